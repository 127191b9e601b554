// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <memory>
#include <string>

#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/comm/session.hpp"
#include "checkpoint/restore_context.hpp"

namespace cairn::detail {

/// Collective over the session. Opens `path`, matches the live graph under `root`, validates,
/// reads and verifies every matched value. Errors are agreed: every rank throws the same one.
/// Pieces that several ranks of a node need are read once per node (storage/node_share.hpp).
/// `info`, if given, receives this rank's counts.
std::shared_ptr<RestoreContext> restore_container(const Session& session,
                                                  const std::shared_ptr<Trackable>& root,
                                                  const std::string& path,
                                                  RestoreInfo* info = nullptr);

}  // namespace cairn::detail
