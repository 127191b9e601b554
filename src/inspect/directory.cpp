// SPDX-License-Identifier: Apache-2.0
// cairn latest and cairn list: a checkpoint directory as its state file and its files show it.
#include "cairn/inspect/directory.hpp"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
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
  std::string status;    // a FileStatus name, "temporary" or "missing"
  std::string recorded;  // "latest", "recorded" or ""
  std::string message;
  detail::Probe probe;
};

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
  std::string state_status = "missing", state_message, latest_name;
  std::vector<std::string> recorded;
  try {
    if (auto state = cairn::detail::read_state_file(dir)) {
      state_status = "ok";
      latest_name = state->latest;
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
    row.probe = detail::probe_file((fs::path(dir) / name).string());
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
      if (st == FileStatus::kMissing) {
        row.message = "the state file names it, but the file does not exist";
        if (row.recorded == "latest") {
          sound = false;
          state_status = "stale";
          state_message = "names '" + name + "' as the latest checkpoint, but it does not exist";
        }
      } else if (st != FileStatus::kCommitted && st != FileStatus::kNotCheckpoint) {
        sound = false;
      }
    }
    rows.push_back(std::move(row));
  }

  if (options.json) {
    ordered_json j;
    j["directory"] = dir;
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
  out << "directory   " << dir << "\nstate file  " << state << "\n\n";
  if (rows.empty()) {
    out << "no checkpoint files\n";
    return sound ? kExitOk : kExitFailed;
  }
  detail::Table table({"file", "status", "state file", "counter", "committed", "size", "details"},
                      {false, false, false, true, false, true, false});
  for (const DirectoryRow& r : rows) {
    const bool committed = r.probe.status == FileStatus::kCommitted;
    table.add({r.name, r.status, r.recorded.empty() ? "-" : r.recorded,
               committed ? std::to_string(r.probe.manifest->save_counter) : "-",
               committed ? detail::utc_time(r.probe.mark->committed_unix) : "-",
               r.probe.file_bytes >= 0 ? detail::human_bytes(r.probe.file_bytes) : "-", r.message});
  }
  table.print(out);
  return sound ? kExitOk : kExitFailed;
}

}  // namespace cairn::inspect
