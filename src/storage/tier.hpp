// SPDX-License-Identifier: Apache-2.0
#pragma once
// Storage tiers: where the files of a checkpoint live and who writes each of them. The shared file
// system holds one file per checkpoint, written by the whole job (level 3); a node-local tier holds
// one part per node, written by that node's ranks into a directory only that node sees (level 1),
// protected by redundancy across nodes (level 2). The manager and the checkpoint layer work
// through this seam, not through paths and communicators of their own.
#include <memory>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "storage/redundancy.hpp"

namespace cairn::detail {

/// One node's part of a node-local checkpoint (format 2.1): the ranks of `file` (one node, in
/// job-rank order) write their node's file together, every node its own, at the same time.
struct PartTarget {
  const Comm* file = nullptr;
  int index = 0;             // the node's number
  int count = 1;             // nodes in the job
  std::vector<int> writers;  // the job ranks of `file`, ascending
};

/// Whether every rank can read its file of a checkpoint at a tier, after rebuilding what the tier
/// could rebuild. The same on every rank.
struct TierAvailability {
  bool complete = false;
  std::vector<int> rebuilt_nodes;  // nodes whose file was rebuilt from redundancy
  std::string reason;              // why not complete, naming the checkpoint and the nodes
};

class StorageTier {
 public:
  virtual ~StorageTier() = default;
  /// Local. "shared file" or "node-local": for log lines, outcomes and the tools.
  virtual std::string level() const = 0;
  /// Local. The file of checkpoint `file_name` that this rank writes and reads.
  virtual std::string path_of(const std::string& file_name) const = 0;
  /// Local. The part this rank's node writes; null when the whole job writes one file.
  virtual const PartTarget* part() const = 0;
  /// Collective over the job, once every file of `file_name` is committed: makes the checkpoint
  /// survive what the tier promises (redundancy across nodes). Same error on every rank.
  virtual void protect(const std::string& file_name) = 0;
  /// Collective over the job, before a restore: can every rank read its file? Rebuilds lost files
  /// where the tier can. Same outcome on every rank.
  virtual TierAvailability make_available(const std::string& file_name) = 0;
  /// Local (each rank removes what it is responsible for). Deletes the checkpoint's files at this
  /// tier; returns the failures, one line each, for the log.
  virtual std::vector<std::string> remove(const std::string& file_name) = 0;
  /// Local. Deletes what crashed saves left at this tier: temporary files of checkpoints named
  /// `<name>-<N>.h5`, and committed files of that naming that `recorded` does not list. Returns one
  /// line per action, for the log.
  virtual std::vector<std::string> recover(const std::string& name,
                                           const std::vector<std::string>& recorded) = 0;
};

/// Collective over `job`. The shared file system: `directory`, one file per checkpoint. Rank 0
/// checks and deletes (`job` must outlive the tier).
std::unique_ptr<StorageTier> make_shared_file_tier(const Comm& job, std::string directory);

/// Collective over `job`. A node-local tier: every node keeps its parts in
/// `<root>/node-<k>` (k: the node's number, by its lowest job rank) and its redundancy data in
/// `<root>/node-<k>/redundancy`. `rank_per_node`: every rank is its own node (tests and
/// benchmarks on one machine); `node_color` >= 0 instead groups the ranks passing the same color
/// (the same, for nodes of several ranks).
std::unique_ptr<StorageTier> make_node_local_tier(const Comm& job, std::string root,
                                                  const RedundancySpec& redundancy,
                                                  bool rank_per_node, int node_color = -1);

}  // namespace cairn::detail
