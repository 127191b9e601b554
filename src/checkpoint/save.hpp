// SPDX-License-Identifier: Apache-2.0
#pragma once
// The collective save of one checkpoint container, with the crash-safe commit protocol.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cairn/comm/session.hpp"
#include "cairn/graph/trackable.hpp"
#include "checkpoint/save_plan.hpp"
#include "storage/table.hpp"
#include "storage/tier.hpp"

namespace cairn::detail {

struct SaveStats {
  int64_t bytes = 0;  // tensor and state bytes this job wrote (all ranks)
  double seconds = 0;
  bool plan_reused = false;
  int64_t metadata_bytes_written = 0;  // this rank's: manifest, packed-region index, commit mark
};

/// A save whose local work is done: what each rank writes, from buffers the plan points at.
struct PreparedSave {
  std::string path;
  int64_t save_counter = 0;
  SessionOptions options;
  std::vector<NodeRecord> nodes;
  SavePlan plan;
  std::chrono::steady_clock::time_point started;
  bool plan_reused = false;  // the plan of the previous save of the same graph (PlanCache)
  // The packed data's chunk buffer (up to 16 MiB), kept with the plan for the next save.
  std::vector<std::byte> packing_buffer;
  // Rank 0's global table of the last save of this plan, and its encoded size (0: none yet). A
  // reused plan has the same graph, tensors and layouts, so only the checksums and offsets of
  // replicated pieces and global state change, and every one of those is written anew; the
  // table's fixed-width encoding keeps its size.
  GlobalTable table;
  int64_t table_bytes = 0;
  // This rank's dataset_write_bytes(), and the largest of any rank of the job, agreed by
  // prepare_save().
  int64_t dataset_bytes = 0;
  int64_t job_dataset_bytes = 0;
};

class PlanCache;

/// Collective over the session's communicator. Walks the graph, plans (or takes the plan of the
/// previous save from `cache` when the graph is unchanged, and remembers a new one there), and
/// agrees that every rank could and that all describe the same graph. The plan still points at
/// the live variables.
/// `group`: who writes replicated tensors and global state (the whole job unless given; a node's
/// ranks for a node-local part, saved without `cache`).
PreparedSave prepare_save(const Session& session, const std::shared_ptr<Trackable>& root,
                          const std::string& path, int64_t save_counter, PlanCache* cache,
                          const WriterGroup* group = nullptr);

/// Collective over `comm` (the session's, or its background communicator). Checksums, manifest,
/// parallel write into a temporary file, agreement, commit. `after_commit` runs on rank 0 once
/// the file is in place (e.g. to update the directory's state file); its failure is reported on
/// every rank. Holds the process's HDF5 lock throughout. With `part`, every node writes and
/// commits its own part file (PreparedSave::path: this node's), and `after_commit` runs once all
/// of them are committed; the plan's writer group must be the node's ranks.
SaveStats commit_save(const Comm& comm, PreparedSave& prepared,
                      const std::function<void()>& after_commit, const PartTarget* part = nullptr);

/// Collective over the session. prepare_save() and commit_save() in one go, after waiting for
/// this process's background saves; the plan goes back to `cache` after a successful save.
SaveStats save_container(const Session& session, const std::shared_ptr<Trackable>& root,
                         const std::string& path, int64_t save_counter,
                         const std::function<void()>& after_commit, PlanCache* cache);

}  // namespace cairn::detail
