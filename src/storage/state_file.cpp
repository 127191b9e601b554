// SPDX-License-Identifier: Apache-2.0
#include "storage/state_file.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cairn/core/error.hpp"
#include "storage/durable_file.hpp"
#include "storage/json_integers.hpp"
#include "storage/schema.hpp"

namespace cairn::detail {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Error damaged_state_file(const std::string& path, const std::string& what) {
  return Error(ErrorCode::kCorrupt,
               "the state file is damaged (" + what +
                   "); refusing to guess which checkpoint is the latest. Inspect the directory, "
                   "then repair the state file, or remove it to let a CheckpointManager rebuild it "
                   "from the committed checkpoints present",
               {.checkpoint = path, .operation = "read state file"});
}

}  // namespace

std::string state_file_path(const std::string& directory) {
  return (fs::path(directory) / schema::kStateFileName).string();
}

std::string encode_state(const DirectoryState& state) {
  json entries = json::array();
  // Version 2 only when a checkpoint is not a plain shared file: an older cairn must not take a
  // node-local checkpoint for a missing file and drop it.
  int version = 1;
  for (const StateEntry& e : state.checkpoints) {
    json j{{"name", e.name}, {"created_unix", e.created_unix}, {"owner", e.owner}};
    if (e.preserved) j["preserved"] = true;
    if (!e.shared || e.node_local()) {
      version = 2;
      j["shared"] = e.shared;
      if (e.node_local())
        j["node_local"] = {{"ranks", e.node_local_ranks}, {"nodes", e.node_local_nodes}};
    }
    entries.push_back(std::move(j));
  }
  return json{{"format", "cairn-state"},
              {"version", version},
              {"latest", state.latest},
              {"checkpoints", std::move(entries)},
              {"last_preserved_unix", state.last_preserved_unix}}
             .dump(2) +
         "\n";
}

DirectoryState decode_state(const std::string& text, const std::string& path) {
  try {
    const json j = json::parse(text);
    if (j.at("format").get<std::string>() != "cairn-state")
      throw Error(ErrorCode::kCorrupt, "not a cairn state file",
                  {.checkpoint = path, .operation = "read state file"});
    if (json_int64(j.at("version")) > 2)
      throw Error(ErrorCode::kVersion, "the state file is of a newer version than this cairn reads",
                  {.checkpoint = path, .operation = "read state file"});
    DirectoryState state;
    state.latest = j.at("latest").get<std::string>();
    for (const json& e : j.at("checkpoints")) {
      const std::string name = e.at("name").get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw Error(ErrorCode::kCorrupt, "the state file lists an invalid file name '" + name + "'",
                    {.checkpoint = path, .operation = "read state file"});
      StateEntry entry{name, json_int64(e.at("created_unix")), e.at("owner").get<std::string>(),
                       e.value("preserved", false)};
      entry.shared = e.value("shared", true);
      if (e.contains("node_local")) {
        const json& nl = e.at("node_local");
        const int64_t ranks = json_int64(nl.at("ranks")), nodes = json_int64(nl.at("nodes"));
        if (ranks < 1 || nodes < 1 || nodes > ranks || ranks > (int64_t{1} << 24))
          throw Error(ErrorCode::kCorrupt,
                      "the state file gives '" + name + "' node-local parts of " +
                          std::to_string(ranks) + " ranks on " + std::to_string(nodes) + " nodes",
                      {.checkpoint = path, .operation = "read state file"});
        entry.node_local_ranks = static_cast<int>(ranks);
        entry.node_local_nodes = static_cast<int>(nodes);
      }
      if (!entry.shared && !entry.node_local())
        throw Error(
            ErrorCode::kCorrupt,
            "the state file lists '" + name + "' at no level (neither shared nor node-local)",
            {.checkpoint = path, .operation = "read state file"});
      state.checkpoints.push_back(std::move(entry));
    }
    if (j.contains("last_preserved_unix"))
      for (const auto& [owner, when] :
           j.at("last_preserved_unix").get<std::map<std::string, json>>())
        state.last_preserved_unix[owner] = json_int64(when);
    return state;
  } catch (const json::exception& e) {
    throw damaged_state_file(path, e.what());
  } catch (const NotAnInteger&) {
    throw damaged_state_file(path, "a number that must be an integer is not one");
  }
}

std::optional<DirectoryState> read_state_file(const std::string& directory) {
  const std::string path = state_file_path(directory);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec)
      throw Error(ErrorCode::kIo, "cannot check for the state file: " + ec.message(),
                  {.checkpoint = path, .operation = "read state file"});
    return std::nullopt;
  }
  return decode_state(read_whole_file(path), path);
}

std::optional<std::string> latest_recorded_checkpoint(const std::string& directory) {
  auto state = read_state_file(directory);
  if (!state || state->latest.empty()) return std::nullopt;
  const std::string path = (fs::path(directory) / state->latest).string();
  if (!fs::exists(path))
    throw Error(ErrorCode::kNotFound,
                "the state file names '" + state->latest +
                    "' as the latest checkpoint, but it "
                    "does not exist",
                {.checkpoint = path, .operation = "latest_checkpoint"});
  return path;
}

void write_state_file(const std::string& directory, const DirectoryState& state) {
  write_file_atomically(state_file_path(directory), encode_state(state));
}

void record_latest(const std::string& checkpoint_path, const std::string& owner,
                   int64_t created_unix) {
  const std::string directory = parent_directory(checkpoint_path);
  DirectoryState state = read_state_file(directory).value_or(DirectoryState{});
  const std::string name = fs::path(checkpoint_path).filename().string();
  std::erase_if(state.checkpoints, [&](const StateEntry& e) { return e.name == name; });
  state.checkpoints.push_back({name, created_unix, owner, false});
  state.latest = name;
  write_state_file(directory, state);
}

}  // namespace cairn::detail
