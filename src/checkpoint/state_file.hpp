#pragma once
// The directory's state file: which checkpoint is the latest, and which were recorded. Written
// atomically; a file that exists but cannot be parsed is an error, never "no checkpoint".
#include <optional>
#include <string>
#include <vector>

namespace cairn::detail {

struct DirectoryState {
  std::string latest;                    // file name relative to the directory
  std::vector<std::string> checkpoints;  // oldest first, relative names
};

/// Local. nullopt if `directory` has no state file; throws cairn::Error(kCorrupt) if it is damaged.
std::optional<DirectoryState> read_state_file(const std::string& directory);
/// Local. Atomically replaces the state file.
void write_state_file(const std::string& directory, const DirectoryState& state);
/// Local. Records `checkpoint_path` as the latest checkpoint of its directory.
void record_latest(const std::string& checkpoint_path);

}  // namespace cairn::detail
