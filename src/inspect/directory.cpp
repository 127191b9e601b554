// SPDX-License-Identifier: Apache-2.0
// cairn latest and cairn list: a checkpoint directory as its state file and its files show it.
#include "cairn/inspect/directory.hpp"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "inspect/node_parts.hpp"
#include "inspect/probe.hpp"
#include "inspect/scan.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/schema.hpp"
#include "storage/state_file.hpp"

namespace cairn::inspect {
namespace {

namespace fs = std::filesystem;
using detail::FileStatus;
using nlohmann::ordered_json;

void require_directory(const std::string& dir, const std::string& operation) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    throw Error(ErrorCode::kNotFound, "no such directory",
                {.checkpoint = dir, .operation = operation});
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorCode::kInvalidArgument, "not a directory (give the checkpoint directory)",
                {.checkpoint = dir, .operation = operation});
}

struct DirectoryRow {
  std::string name;
  std::string status;    // a FileStatus name, "temporary", "missing" or "node-local"
  std::string recorded;  // "latest", "recorded" or ""
  std::string message;
  detail::Probe probe;
  std::optional<cairn::detail::StateEntry> entry;  // the state file's, when recorded
  std::vector<detail::NodePart> parts;             // found under --node-local
};

// Where the state file says a checkpoint lives: "shared", "node-local", "shared+node-local".
std::string levels_text(const DirectoryRow& r) {
  if (!r.entry) return "-";
  std::string out = r.entry->shared ? "shared" : "";
  if (r.entry->node_local())
    out += std::string(out.empty() ? "" : "+") + "node-local(" +
           detail::plural(r.entry->node_local_ranks, "rank") + " on " +
           detail::plural(r.entry->node_local_nodes, "node") + ")";
  return out;
}

// "2/2 ok", "1/2 ok; node-1: corrupt", "none here".
std::string parts_text(const DirectoryRow& r) {
  const int nodes = r.entry && r.entry->node_local() ? r.entry->node_local_nodes : 0;
  int ok = 0;
  std::string bad;
  for (const detail::NodePart& p : r.parts) {
    if (p.status == "ok")
      ++ok;
    else
      bad += "; node-" + std::to_string(p.node) + ": " + p.status;
  }
  if (r.parts.empty()) return nodes > 0 ? "0/" + std::to_string(nodes) + " here" : "-";
  return std::to_string(ok) + "/" + (nodes > 0 ? std::to_string(nodes) : std::string("?")) +
         " ok here" + bad;
}

}  // namespace

int latest(const LatestOptions& options, std::ostream& out) {
  require_directory(options.directory, "latest");
  std::optional<std::string> path;
  try {
    path = cairn::detail::latest_recorded_checkpoint(options.directory);
  } catch (const Error& e) {
    // A damaged state file must never read as "no checkpoint" (exit 1): it is unreadable (3),
    // and still "corrupt", as the library says.
    if (e.code() != ErrorCode::kCorrupt) throw;
    throw VerbError(e, kExitIo);
  }
  if (options.json) {
    ordered_json j{{"directory", options.directory}, {"latest", nullptr}};
    if (path) j["latest"] = *path;
    out << j.dump(2) << '\n';
  }
  if (!path) return kExitFailed;
  if (!options.json) out << *path << '\n';
  return kExitOk;
}

int list(const ListOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  const std::string& dir = options.directory;
  require_directory(dir, "list");
  std::vector<std::pair<int, std::string>> node_dirs;
  if (!options.node_local_directory.empty())
    node_dirs = detail::node_directories(options.node_local_directory);
  std::string state_status = "missing", state_message, latest_name;
  std::vector<std::string> recorded;
  std::vector<cairn::detail::StateEntry> entries;
  try {
    if (auto state = cairn::detail::read_state_file(dir)) {
      state_status = "ok";
      latest_name = state->latest;
      entries = state->checkpoints;
      for (const auto& e : state->checkpoints) recorded.push_back(e.name);
    }
  } catch (const Error& e) {
    state_status = "damaged";
    state_message = bare_message(e);
  }
  std::vector<std::string> names = detail::checkpoint_like_files(dir);
  for (const std::string& r : recorded)
    if (std::find(names.begin(), names.end(), r) == names.end()) names.push_back(r);
  if (!latest_name.empty() && std::find(names.begin(), names.end(), latest_name) == names.end())
    names.push_back(latest_name);
  std::sort(names.begin(), names.end(), detail::natural_less);

  bool sound = state_status != "damaged";
  std::vector<DirectoryRow> rows;
  for (const std::string& name : names) {
    DirectoryRow row;
    row.name = name;
    row.recorded = name == latest_name ? "latest"
                   : std::find(recorded.begin(), recorded.end(), name) != recorded.end()
                       ? "recorded"
                       : "";
    for (const auto& e : entries)
      if (e.name == name) row.entry = e;
    row.probe = detail::probe_file((fs::path(dir) / name).string());
    if (!node_dirs.empty() && !detail::is_temporary_name(name))
      row.parts = detail::probe_node_parts(
          node_dirs, name, row.entry && row.entry->node_local() ? row.entry->node_local_nodes : 0);
    for (const detail::NodePart& part : row.parts)
      if (part.status != "ok") sound = false;
    const FileStatus st = row.probe.status;
    row.message = st == FileStatus::kCommitted ? "" : row.probe.problem.message;
    if (detail::is_temporary_name(name)) {
      row.status = "temporary";
      row.message = st == FileStatus::kCommitted
                        ? "carries a commit mark: the save crashed between commit and rename"
                        : "left by a save in progress or one that crashed (" +
                              std::string(detail::status_name(st)) + ")";
    } else {
      row.status = detail::status_name(st);
      if (st == FileStatus::kMissing && row.entry && !row.entry->shared &&
          row.recorded != "latest") {
        // Not drained to this directory (yet): its files are the nodes' parts.
        row.status = "node-local";
        row.message = "node-local only: parts on " +
                      detail::plural(row.entry->node_local_nodes, "node") +
                      (node_dirs.empty() ? " (cairn list --node-local DIR shows them)" : "");
      } else if (st == FileStatus::kMissing) {
        row.message = "the state file names it, but the file does not exist";
        if (row.recorded == "latest") {
          sound = false;
          state_status = "stale";
          state_message = "names '" + name + "' as the latest checkpoint, but it does not exist";
        }
      } else if (st != FileStatus::kCommitted && st != FileStatus::kNotCheckpoint) {
        sound = false;
      } else if (row.probe.part) {
        // In a node directory, parts are what is expected; where the state file records a whole
        // checkpoint of that name, a part is not one.
        row.status = "part";
        row.message =
            "holds " + detail::describe_part(*row.probe.part) + ", not a whole checkpoint";
        if (row.entry) {
          sound = false;
          row.message += ", where the state file records one";
        }
      }
    }
    rows.push_back(std::move(row));
  }

  if (options.json) {
    ordered_json j;
    j["directory"] = dir;
    if (!options.node_local_directory.empty()) {
      j["node_local_directory"] = options.node_local_directory;
      ordered_json nodes = ordered_json::array();
      for (const auto& nd : node_dirs) nodes.push_back(nd.first);
      j["node_directories"] = std::move(nodes);
    }
    j["state_file"] = {{"status", state_status},
                       {"message", state_message},
                       {"latest", latest_name},
                       {"recorded", recorded}};
    ordered_json files = ordered_json::array();
    for (const DirectoryRow& r : rows) {
      ordered_json f;
      f["name"] = r.name;
      f["status"] = r.status;
      f["state_file"] = r.recorded;
      f["file_bytes"] = r.probe.file_bytes;
      ordered_json levels;
      if (r.entry) {  // the state file's record of where the checkpoint lives
        levels["shared"] = r.entry->shared;
        levels["node_local"] = nullptr;
        if (r.entry->node_local())
          levels["node_local"] = {{"ranks", r.entry->node_local_ranks},
                                  {"nodes", r.entry->node_local_nodes}};
      }
      f["levels"] = r.entry ? std::move(levels) : ordered_json(nullptr);
      if (r.probe.part)
        f["part"] = {{"index", r.probe.part->index},
                     {"count", r.probe.part->count},
                     {"writers", r.probe.part->writers}};
      if (!node_dirs.empty()) {
        ordered_json parts = ordered_json::array();
        for (const detail::NodePart& p : r.parts)
          parts.push_back(
              {{"node", p.node}, {"path", p.path}, {"status", p.status}, {"message", p.message}});
        f["node_local_parts"] = std::move(parts);
      }
      if (r.probe.status == FileStatus::kCommitted) {
        f["format_version"] = detail::format_version(*r.probe.manifest);
        f["save_counter"] = r.probe.manifest->save_counter;
        f["world_size"] = r.probe.manifest->world_size;
        f["committed_unix"] = r.probe.mark->committed_unix;
      }
      f["message"] = r.message;
      files.push_back(std::move(f));
    }
    j["files"] = std::move(files);
    j["sound"] = sound;
    out << j.dump(2) << '\n';
    return sound ? kExitOk : kExitFailed;
  }
  std::string state = state_status;
  if (state_status == "ok")
    state += ": latest " + (latest_name.empty() ? std::string("(none)") : latest_name) + ", " +
             detail::plural(static_cast<int64_t>(recorded.size()), "checkpoint") + " recorded";
  if (state_status == "damaged" || state_status == "stale") state += ": " + state_message;
  if (state_status == "missing")
    state += " (" + std::string(cairn::detail::schema::kStateFileName) + " does not exist)";
  out << "directory   " << dir << "\nstate file  " << state << '\n';
  if (!options.node_local_directory.empty()) {
    std::string seen;
    for (const auto& nd : node_dirs) seen += (seen.empty() ? "" : ", ") + std::to_string(nd.first);
    out << "node-local  " << options.node_local_directory << ": "
        << (node_dirs.empty() ? "no node directories" : "node directories " + seen) << '\n';
  }
  out << '\n';
  if (rows.empty()) {
    out << "no checkpoint files\n";
    return sound ? kExitOk : kExitFailed;
  }
  std::vector<std::string> header = {"file",    "status",    "state file", "levels",
                                     "counter", "committed", "size",       "details"};
  std::vector<bool> right = {false, false, false, false, true, false, true, false};
  const bool with_parts = !options.node_local_directory.empty();
  if (with_parts) {
    header.insert(header.begin() + 4, "node parts");
    right.insert(right.begin() + 4, false);
  }
  detail::Table table(header, right);
  for (const DirectoryRow& r : rows) {
    const bool committed = r.probe.status == FileStatus::kCommitted;
    std::string message = r.message;
    for (const detail::NodePart& p : r.parts)
      if (p.status != "ok")
        message += std::string(message.empty() ? "" : "; ") + "node-" + std::to_string(p.node) +
                   ": " + p.message;
    std::vector<std::string> row = {
        r.name,
        r.status,
        r.recorded.empty() ? "-" : r.recorded,
        levels_text(r),
        committed ? std::to_string(r.probe.manifest->save_counter) : "-",
        committed ? detail::utc_time(r.probe.mark->committed_unix) : "-",
        r.probe.file_bytes >= 0 ? detail::human_bytes(r.probe.file_bytes) : "-",
        message};
    if (with_parts) row.insert(row.begin() + 4, parts_text(r));
    table.add(std::move(row));
  }
  table.print(out);
  return sound ? kExitOk : kExitFailed;
}

}  // namespace cairn::inspect
