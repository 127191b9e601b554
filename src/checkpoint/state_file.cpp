#include "checkpoint/state_file.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/core/error.hpp"
#include "storage/durable_file.hpp"

namespace cairn::detail {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string state_path(const std::string& directory) {
  return (fs::path(directory) / kStateFileName).string();
}

}  // namespace

std::optional<DirectoryState> read_state_file(const std::string& directory) {
  const std::string path = state_path(directory);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec)
      throw Error(ErrorCode::kIo, "cannot check for the state file: " + ec.message(),
                  {.checkpoint = path, .operation = "read state file"});
    return std::nullopt;
  }
  const std::string text = read_whole_file(path);
  try {
    const json j = json::parse(text);
    if (j.at("format").get<std::string>() != "cairn-state")
      throw Error(ErrorCode::kCorrupt, "not a cairn state file", {.checkpoint = path});
    DirectoryState state;
    state.latest = j.at("latest").get<std::string>();
    state.checkpoints = j.at("checkpoints").get<std::vector<std::string>>();
    return state;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt,
                std::string("the state file is damaged (") + e.what() +
                    "); refusing to guess which checkpoint is the latest. Inspect the directory, "
                    "then repair the state file or remove it",
                {.checkpoint = path, .operation = "read state file"});
  }
}

void write_state_file(const std::string& directory, const DirectoryState& state) {
  const json j{{"format", "cairn-state"}, {"version", 1}, {"latest", state.latest},
               {"checkpoints", state.checkpoints}};
  write_file_atomically(state_path(directory), j.dump(2) + "\n");
}

void record_latest(const std::string& checkpoint_path) {
  const std::string directory = parent_directory(checkpoint_path);
  DirectoryState state = read_state_file(directory).value_or(DirectoryState{});
  const std::string name = fs::path(checkpoint_path).filename().string();
  std::erase(state.checkpoints, name);
  state.checkpoints.push_back(name);
  state.latest = name;
  write_state_file(directory, state);
}

}  // namespace cairn::detail
