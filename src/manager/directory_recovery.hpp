// SPDX-License-Identifier: Apache-2.0
#pragma once
// Bringing a checkpoint directory's state file in line with the files present, after crashes.
#include <string>
#include <vector>

#include "cairn/core/log.hpp"
#include "storage/state_file.hpp"

namespace cairn::detail {

/// One recovery action, said for the operator, and the level it is logged at: a warning when it
/// leaves something for a person to look at.
struct RecoveryNote {
  LogLevel level;
  std::string text;
};

/// Local (rank 0). Reads the state of `directory` and repairs it for the manager that names its
/// files "<name>-<N>.h5" and owns them as `owner`: drops entries whose files are gone, adopts
/// committed files of that naming newer than any it recorded (or all of them when there is no
/// state file), deletes temporary files of crashed saves of that naming. Appends one note per
/// action to `notes` and writes the state file back if anything changed.
DirectoryState recover_directory(const std::string& directory, const std::string& name,
                                 const std::string& owner, int64_t now_unix,
                                 std::vector<RecoveryNote>& notes);

/// The checkpoint number in "<name>-<N>.h5", or -1 if `file` is not named so.
int64_t checkpoint_number(const std::string& file, const std::string& name);

}  // namespace cairn::detail
