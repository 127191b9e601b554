// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/comm/session.hpp"
#include "checkpoint/restore_context.hpp"

namespace cairn::detail {

struct RestoreStats {
  int64_t bytes = 0;  // bytes of the job's variables restored (all ranks)
  double seconds = 0;
  int64_t metadata_bytes_read = 0;  // this rank's (ContainerReader::metadata_bytes_read)
};

/// Collective over the session. Opens `path`, matches the live graph under `root`, validates,
/// reads and verifies every matched value. Errors are agreed: every rank throws the same one.
/// Fills `stats` if given.
std::shared_ptr<RestoreContext> restore_container(const Session& session,
                                                  const std::shared_ptr<Trackable>& root,
                                                  const std::string& path,
                                                  RestoreStats* stats = nullptr);

}  // namespace cairn::detail
