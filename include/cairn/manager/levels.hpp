// SPDX-License-Identifier: Apache-2.0
#pragma once
// Multi-level checkpointing for CheckpointManager: frequent saves to node-local storage (level 1),
// protected against the loss of a node by redundancy across nodes (level 2), and drained in the
// background to the shared file system every few checkpoints (level 3). See docs/operations.md.
#include <string>

namespace cairn {

/// How a node's node-local files are protected against the loss of that node (level 2).
enum class Redundancy {
  kNone,     // no protection: a lost node's checkpoint restores from the shared file system
  kPartner,  // a copy of each node's files on another node (on another host where possible)
  kXor,      // XOR parity over groups of xor_group_size nodes: 1/(g-1) extra space per node
};

struct LevelOptions {
  /// Level 1: a directory on storage local to each node (a RAM disk such as /dev/shm, a local
  /// NVMe, the job's $TMPDIR). Each node keeps its files in "<dir>/node-<k>". Empty: multi-level
  /// checkpointing is off and every save goes to the manager's directory.
  std::string node_local_directory;
  Redundancy redundancy = Redundancy::kNone;
  /// Nodes per XOR group (>= 2): more nodes, less space, more work to rebuild.
  int xor_group_size = 4;
  /// Node-local checkpoints kept on each node (>= 1); older ones and their redundancy are deleted.
  int keep_node_local = 2;
  /// Checkpoints whose number is a multiple of this are also written to the manager's directory
  /// (level 3), in the background; the manager's max_to_keep applies there. 0: never.
  int shared_every = 1;
  /// Every rank acts as its own node, with its own node-local directory: for tests and benchmarks
  /// on one machine, where all ranks share one host. Never on a cluster.
  bool rank_per_node = false;
};

/// Local. `options` with the overrides a batch script sets in the environment (docs/operations.md):
/// CAIRN_NODE_LOCAL_DIR, CAIRN_REDUNDANCY ("none", "partner", "xor" or "xor:<g>"),
/// CAIRN_KEEP_NODE_LOCAL, CAIRN_SHARED_EVERY, CAIRN_RANK_PER_NODE ("1"). Throws
/// cairn::Error(kInvalidArgument) naming the variable for a value it cannot parse.
LevelOptions levels_from_environment(LevelOptions options);

}  // namespace cairn
