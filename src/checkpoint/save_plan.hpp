// SPDX-License-Identifier: Apache-2.0
#pragma once
// What one rank writes in a save: the manifest records it owns, the regions of its live buffers
// that go into datasets, and its part of the packed byte dataset.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/comm/session.hpp"
#include "cairn/state/state.hpp"
#include "cairn/tensor/layout.hpp"
#include "checkpoint/graph_walk.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

/// A region of a live buffer that one rank writes.
struct LocalWrite {
  std::size_t tensor = 0;  // index into SavePlan::tensors
  const std::byte* buffer = nullptr;
  Box buffer_box;      // how `buffer` is laid out
  WrittenBox written;  // rank, box and checksummed pieces (packed offsets region-relative)
};

struct LocalBlob {
  std::size_t state = 0;  // index into SavePlan::states
  StateBlob blob;         // packed_offset region-relative
  std::string bytes;      // the serialized state: a snapshot taken at planning time
};

/// The ranks that share the writing of replicated tensors and global state: the whole job for a
/// shared file, the ranks of one node for a node-local part (which must hold all of them, since no
/// other node's file is reachable when it is restored).
struct WriterGroup {
  int rank = 0;                // this rank's position in the group
  int size = 1;                // ranks in the group
  std::vector<int> job_ranks;  // the group's job ranks, ascending
  /// The whole job of `session`.
  static WriterGroup whole_job(const Session& session);
};

struct SavePlan {
  std::vector<TensorRecord> tensors;  // without boxes: those come from every rank's writes
  std::vector<Layout> layouts;        // per tensor: the rule the table stores
  int64_t piece_bytes = 0;            // SessionOptions::piece_bytes, the same on every rank
  std::vector<StateRecord> states;    // without blobs
  std::vector<LocalWrite> writes;     // this rank's
  std::vector<LocalBlob> blobs;       // this rank's
  int64_t packed_bytes = 0;  // this rank's bytes of the packed dataset: packed tensors, then blobs
  int64_t tensor_packed_bytes = 0;  // the packed tensors' part of packed_bytes
  std::string signature;            // what every rank must agree on: keys, dtypes, shapes, layouts
  /// Per dataset tensor, the most write calls any rank makes (for collective transfers).
  std::vector<int64_t> max_writes;
  WriterGroup group;  // who writes the replicated pieces and global state
};

/// Local. Builds this rank's plan from the walked graph: opaque state is serialized now; every
/// tensor write (packed or not) still points at the live variables. Throws cairn::Error
/// naming the key for invalid layouts or a variable built for another job size.
/// `group`: the whole job unless given.
SavePlan make_save_plan(const LiveGraph& graph, const Session& session,
                        const WriterGroup* group = nullptr);
/// Local. Serializes the opaque state `states` (the plan's states, in order) into this rank's
/// blobs, after the packed tensors; replaces the blobs of an earlier call. Global state is divided
/// among plan.group.
void serialize_states(SavePlan& plan, const std::vector<const StateObject*>& states,
                      const Session& session);
/// Which pieces compute_checksums() fills.
enum class ChecksumPieces { kAll, kDatasetsOnly };
/// Local. Fills the checksum of every piece (kDatasetsOnly: of every piece of a tensor in its own
/// dataset, the packed ones are left to the packing loop) from the buffers the writes point at
/// (in parallel).
void compute_checksums(SavePlan& plan, ChecksumPieces which = ChecksumPieces::kAll);
/// Local. Bytes this rank writes into datasets (tensors above the pack threshold).
int64_t dataset_write_bytes(const SavePlan& plan);
/// Local. Bytes of the tensor writes, which point at live variables until stage_plan().
int64_t staging_bytes_needed(const SavePlan& plan);
/// Local. Copies those writes into `staging` (staging_bytes_needed() bytes) and points them there:
/// afterwards the plan no longer reads the live variables.
void stage_plan(SavePlan& plan, std::byte* staging);

}  // namespace cairn::detail
