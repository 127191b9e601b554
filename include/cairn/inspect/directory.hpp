// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn latest DIR` and `cairn list DIR`: a checkpoint directory as its state file and its files
// show it.
#include <iosfwd>
#include <string>

namespace cairn::inspect {

struct LatestOptions {
  std::string directory;
  bool json = false;  // {"directory", "latest"}: the path, or null when none is recorded
};

/// Local. Prints the path of the latest checkpoint the state file names (as
/// cairn::latest_checkpoint does) and returns kExitOk; returns kExitFailed, printing nothing to
/// `out` (with `json`: a null "latest"), when the directory has no state file or the state file
/// names no checkpoint. Throws
/// cairn::Error when the directory is missing, the state file is damaged, or it names a file
/// that does not exist.
int latest(const LatestOptions& options, std::ostream& out);

struct ListOptions {
  std::string directory;
  bool json = false;
  /// The node-local root of a multi-level manager (its LevelOptions::node_local_directory): also
  /// check each checkpoint's parts in the node directories `<root>/node-<k>` this machine sees.
  /// Empty: only the state file's view of the levels.
  std::string node_local_directory;
};

/// Local. Prints what the state file says (latest, recorded checkpoints) and every
/// checkpoint-like file of the directory (`*.h5`, `*.h5.tmp-*`, and names the state file lists)
/// with its status: committed, temporary, uncommitted, corrupt, unsupported (newer format),
/// not-a-checkpoint, missing, node-local (recorded at the node-local level only) or part (a node's
/// part file where a whole checkpoint belongs), and the levels the state file records for it.
/// With `node_local_directory`, each checkpoint's node parts found there (a part that is not
/// committed, or not the part its node directory should hold, makes the listing unsound). The state
/// file is "ok", "missing", "damaged", or "stale" when the latest checkpoint it names does not
/// exist. Only commit marks and manifests are checked; `cairn verify` checks the data. Returns
/// kExitOk when every non-temporary file is a committed checkpoint and the state file is sound,
/// kExitFailed otherwise. Throws cairn::Error if the directory cannot be read.
int list(const ListOptions& options, std::ostream& out);

}  // namespace cairn::inspect
