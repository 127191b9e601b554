// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/comm/session.hpp"
#include "checkpoint/restore_context.hpp"

namespace cairn::detail {

struct RestoreStats {
  int64_t bytes = 0;  // bytes of the job's variables restored (all ranks)
  double seconds = 0;
  int64_t metadata_bytes_read = 0;  // this rank's (ContainerReader::metadata_bytes_read)
  // This rank's piece and state bytes: read from the file, received from its node's ranks.
  int64_t bytes_read_from_file = 0;
  int64_t bytes_received_from_peers = 0;
  int node_ranks = 1;  // ranks of its node that shared reads (1 when nothing is shared)
};

/// Collective over the session. Opens `path`, matches the live graph under `root`, validates,
/// reads and verifies every matched value. Errors are agreed: every rank throws the same one.
/// With SessionOptions::replicated_reads == kOncePerNode, pieces that several ranks of a node need
/// are read once per node (storage/node_share.hpp). Fills `stats` if given.
/// With `node`: `path` is this node's part of a node-local checkpoint (format 2.1), opened by the
/// ranks of `node` together, every node its own; the job must have the size and node grouping that
/// saved it, and every rank reads only its node's file. `level` names where the data came from in
/// the log line.
std::shared_ptr<RestoreContext> restore_container(const Session& session,
                                                  const std::shared_ptr<Trackable>& root,
                                                  const std::string& path,
                                                  RestoreStats* stats = nullptr,
                                                  const Comm* node = nullptr,
                                                  const std::string& level = "shared file");

}  // namespace cairn::detail
