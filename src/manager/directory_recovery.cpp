// SPDX-License-Identifier: Apache-2.0
#include "manager/directory_recovery.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/core/error.hpp"
#include "storage/container_reader.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::detail {
namespace {

namespace fs = std::filesystem;

// Digits only, no sign, no leading '+': "<name>-<digits><suffix>" with nothing else.
int64_t number_before(const std::string& file, const std::string& name,
                      const std::string& suffix_start) {
  const std::string prefix = name + "-";
  if (file.size() <= prefix.size() || file.compare(0, prefix.size(), prefix) != 0) return -1;
  std::size_t i = prefix.size(), digits = 0;
  int64_t value = 0;
  while (i < file.size() && file[i] >= '0' && file[i] <= '9' && digits < 18) {
    value = value * 10 + (file[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || file.compare(i, suffix_start.size(), suffix_start) != 0) return -1;
  return value;
}

bool is_temporary_of(const std::string& file, const std::string& name) {
  const auto pos = file.find(".h5.tmp-");
  return pos != std::string::npos && number_before(file, name, ".h5.tmp-") >= 0;
}

}  // namespace

int64_t checkpoint_number(const std::string& file, const std::string& name) {
  const int64_t n = number_before(file, name, ".h5");
  return n >= 0 && file.size() == name.size() + 1 + std::to_string(n).size() + 3 ? n : -1;
}

DirectoryState recover_directory(const std::string& directory, const std::string& name,
                                 const std::string& owner, int64_t now_unix,
                                 std::vector<RecoveryNote>& notes) {
  std::error_code ec;
  fs::create_directories(directory, ec);  // a new run's directory, as a save would create it
  if (ec || !fs::is_directory(directory))
    throw Error(ErrorCode::kIo,
                "cannot create the checkpoint directory" + (ec ? ": " + ec.message() : ""),
                {.checkpoint = directory, .operation = "open checkpoint directory"});
  auto existing = read_state_file(directory);
  const bool had_state = existing.has_value();
  DirectoryState state = existing.value_or(DirectoryState{});
  bool changed = false;

  const std::size_t before = state.checkpoints.size();
  std::erase_if(state.checkpoints, [&](StateEntry& e) {
    const bool present = fs::is_regular_file(fs::path(directory) / e.name);
    if (present == e.shared) return false;
    if (present) {
      // A drain to this directory committed, and the job died before recording it (a file has
      // its final name only once committed: it is written under a temporary one).
      e.shared = true;
      changed = true;
      notes.push_back({LogLevel::kInfo, "recorded the shared copy of '" + e.name +
                                            "': committed by a drain the state file missed"});
      return false;
    }
    if (e.node_local()) {
      e.shared = false;
      changed = true;
      notes.push_back({LogLevel::kWarning, "'" + e.name +
                                               "' is gone from the shared directory; its "
                                               "node-local parts remain recorded"});
      return false;
    }
    notes.push_back(
        {LogLevel::kInfo, "dropped '" + e.name + "' from the state file: the file is gone"});
    return true;
  });
  changed |= state.checkpoints.size() != before;

  int64_t newest_recorded = -1;
  for (const StateEntry& e : state.checkpoints)
    if (e.owner == owner)
      newest_recorded = std::max(newest_recorded, checkpoint_number(e.name, name));

  std::map<int64_t, std::string> unrecorded;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string file = entry.path().filename().string();
    if (is_temporary_of(file, name) || file.rfind(std::string(kStateFileName) + ".tmp-", 0) == 0) {
      fs::remove(entry.path(), ec);
      notes.push_back(
          ec ? RecoveryNote{LogLevel::kWarning,
                            "could not delete leftover '" + file + "': " + ec.message()}
             : RecoveryNote{LogLevel::kInfo,
                            "deleted '" + file + "', left by a save that did not complete"});
      continue;
    }
    const int64_t n = checkpoint_number(file, name);
    if (n < 0) continue;
    const bool recorded = std::any_of(state.checkpoints.begin(), state.checkpoints.end(),
                                      [&](const StateEntry& e) { return e.name == file; });
    if (!recorded && (!had_state || n > newest_recorded)) unrecorded.emplace(n, file);
  }
  for (const auto& [n, file] : unrecorded) {
    const std::string path = (fs::path(directory) / file).string();
    try {
      std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
      ContainerReader probe(nullptr, path);
      state.checkpoints.push_back({file, probe.commit_mark().committed_unix, owner, false});
      state.latest = file;
      changed = true;
      notes.push_back(
          {LogLevel::kInfo, "adopted '" + file + "': committed, but " +
                                (had_state ? std::string("newer than the state file knew (a crash "
                                                         "between commit and state update)")
                                           : std::string("there was no state file"))});
    } catch (const Error& e) {
      notes.push_back({LogLevel::kWarning, "ignored '" + file + "': " + e.what()});
    }
  }
  if (!state.latest.empty() &&
      std::none_of(state.checkpoints.begin(), state.checkpoints.end(),
                   [&](const StateEntry& e) { return e.name == state.latest && e.shared; })) {
    state.latest.clear();
    for (const StateEntry& e : state.checkpoints)
      if (e.shared) state.latest = e.name;
    changed = true;
  }
  if (!state.last_preserved_unix.count(owner)) {
    state.last_preserved_unix[owner] = now_unix;
    changed = true;
  }
  if (changed) write_state_file(directory, state);
  return state;
}

}  // namespace cairn::detail
