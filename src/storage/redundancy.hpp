// SPDX-License-Identifier: Apache-2.0
#pragma once
// Level 2 of multi-level checkpointing: redundancy across nodes, so that the node-local (level 1)
// file of a lost node can be rebuilt from the others. File-level and format-blind: each node's
// file is opaque bytes, read and stored as its data extents (sparse files stay small). Schemes:
// a partner copy on another node (ideally on another host), or XOR parity over groups of nodes
// (one lost node per group, 1/(g-1) of the data in extra space per node). Files it writes are
// described in docs/format.md ("Redundancy files").
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "storage/node_layout.hpp"

namespace cairn::detail {

enum class Redundancy { kNone, kPartner, kXor };

struct RedundancySpec {
  Redundancy scheme = Redundancy::kNone;
  int xor_group_size = 4;  // nodes per XOR group, >= 2 (see xor_grouping)
  // Bytes read, sent and written per round; bounds the memory (a few blocks per node leader).
  // At most 1 GiB (MPI counts are int).
  int64_t block_bytes = int64_t{8} << 20;
};

/// Collective over `job`. Every node leader passes the committed level-1 file of its node for
/// checkpoint `name` (`own_file`) and its node's redundancy directory `red_dir` (created if
/// missing); other ranks' arguments are ignored. Afterwards the redundancy data of `name` is
/// durable in the red_dir of the nodes that keep it, with a metadata file on every node recording
/// the sizes, extents and checksums. With one node, or kNone, only the metadata is written (so that
/// rebuild() can still check the file). A failure anywhere is the same cairn::Error on every rank
/// (naming the checkpoint, the node and its rank, operation "protect"), and every node's files of
/// `name` are removed, so nothing partial looks valid.
void protect(const Comm& job, const NodeLayout& layout, const RedundancySpec& spec,
             const std::string& name, const std::string& own_file, const std::string& red_dir);

struct RebuildOutcome {
  bool complete = false;           // every node now has its own_file
  std::vector<int> rebuilt_nodes;  // nodes whose file was rebuilt from redundancy
  std::vector<int> lost_nodes;     // nodes whose file could not be rebuilt (complete=false)
  std::string reason;              // why not, one line naming checkpoint, nodes and scheme
  bool operator==(const RebuildOutcome&) const = default;
};

/// Collective over `job`. Each node leader checks its own_file against the checksums recorded at
/// protect time; the job agrees which nodes lost theirs and whether the scheme can rebuild all of
/// them. If it can, the lost files are rebuilt bit-identical into own_file (temporary file, fsync,
/// rename) and, when a node lost its files or any redundancy data is missing or damaged, the
/// checkpoint is protected again, so it survives the next loss too. If it cannot, nothing is
/// written: rebuilt_nodes is empty and lost_nodes names every node whose file is missing or
/// damaged and could not be rebuilt. The same outcome on every rank; an I/O failure while
/// rebuilding is the same cairn::Error on every rank (operation "rebuild").
RebuildOutcome rebuild(const Comm& job, const NodeLayout& layout, const RedundancySpec& spec,
                       const std::string& name, const std::string& own_file,
                       const std::string& red_dir);

/// Local. Removes the redundancy files of `name` in `red_dir` (retention); absent ones are fine.
void remove_redundancy(const std::string& name, const std::string& red_dir);

/// Local. The checkpoints that have redundancy files (temporary ones included) in `red_dir`,
/// each once, in no particular order; empty if the directory cannot be listed.
std::vector<std::string> redundancy_checkpoints(const std::string& red_dir);

}  // namespace cairn::detail
