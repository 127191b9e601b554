// SPDX-License-Identifier: Apache-2.0
#pragma once
// The directory's state file: which checkpoint is the latest, which checkpoints were recorded, who
// made them. Written atomically; a file that exists but cannot be parsed is an error, never
// "no checkpoint".
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cairn::detail {

/// Checkpoints written by Checkpoint::save() have this owner; a manager's are "manager:<name>".
inline constexpr const char* kPlainSaveOwner = "save";

struct StateEntry {
  std::string name;          // file name relative to the directory
  int64_t created_unix = 0;  // seconds, from the saving job's clock
  std::string owner;         // kPlainSaveOwner or "manager:<checkpoint name>"
  bool preserved = false;    // kept for good by keep_checkpoint_every_n_hours
  // Multi-level checkpoints (version 2 of the state file): whether the file is in this directory
  // (level 3, the shared file system), and whether node-local parts exist (level 1), saved by
  // how many ranks on how many nodes. A plain checkpoint is shared only.
  bool shared = true;
  int node_local_ranks = 0;  // 0: no node-local parts
  int node_local_nodes = 0;
  bool node_local() const noexcept { return node_local_ranks > 0; }
};

struct DirectoryState {
  std::string latest;  // the newest checkpoint file in the directory (shared); may be empty
  std::vector<StateEntry> checkpoints;                 // oldest first
  std::map<std::string, int64_t> last_preserved_unix;  // per manager owner
};

/// Local. nullopt if `directory` has no state file; throws cairn::Error(kCorrupt) if it is damaged.
std::optional<DirectoryState> read_state_file(const std::string& directory);
/// Local. The path of the checkpoint the state file of `directory` names as the latest, or
/// nullopt if there is no state file or it names none. Throws cairn::Error if the state file is
/// unreadable or names a missing file.
std::optional<std::string> latest_recorded_checkpoint(const std::string& directory);
/// Local. Atomically replaces the state file.
void write_state_file(const std::string& directory, const DirectoryState& state);
/// Local. The state as JSON text, and back (for broadcasting one rank's view).
std::string encode_state(const DirectoryState& state);
DirectoryState decode_state(const std::string& text, const std::string& path);
/// Local. Records `checkpoint_path`, written by `owner` at `created_unix`, as the latest
/// checkpoint of its directory.
void record_latest(const std::string& checkpoint_path, const std::string& owner,
                   int64_t created_unix);
/// The path of the state file of `directory`.
std::string state_file_path(const std::string& directory);

}  // namespace cairn::detail
