// SPDX-License-Identifier: Apache-2.0
#pragma once
// What CheckpointManager's source files share: the directory state every rank holds, and its log.
#include <string>

#include "cairn/manager/manager.hpp"
#include "comm/wire.hpp"
#include "core/log.hpp"
#include "storage/state_file.hpp"

namespace cairn {

struct CheckpointManager::State {
  detail::DirectoryState directory;
};

namespace detail {

/// Local. A line of the manager's log, through the checkpoint's session options.
inline void manager_log(const Checkpoint& checkpoint, LogLevel level, const std::string& line) {
  const Session& session = checkpoint.session();
  log_line(session.options().log, session.rank(), level, line);
}

/// Collective over `comm`. Every rank takes rank 0's `state` (of the directory `directory`).
inline void take_rank0_state(const Comm& comm, DirectoryState& state,
                             const std::string& directory) {
  wire::Message text;
  if (comm.rank() == 0) text = encode_state(state);
  wire::broadcast(comm, text, 0);
  state = decode_state(text.get<std::string>(), state_file_path(directory));
}

}  // namespace detail
}  // namespace cairn
