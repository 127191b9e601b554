// SPDX-License-Identifier: Apache-2.0
#pragma once
// Zero-redundant loading: a saved piece that several restoring ranks of one node need (a
// replicated tensor, or a saved box that straddles the boxes of several ranks) is read from the
// file by one rank of the node, verified there, and broadcast to the others over the node's
// shared-memory communicator. Each node still reads its own copy, so the file system sees one read
// per node, not one per rank.
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "core/transient_buffer.hpp"
#include "storage/container_reader.hpp"
#include "storage/tensor_read.hpp"

namespace cairn::detail {

class NodeShare {
 public:
  /// Collective over `comm`. Groups its ranks by node (MPI_COMM_TYPE_SHARED).
  explicit NodeShare(const Comm& comm);
  NodeShare(const NodeShare&) = delete;
  NodeShare& operator=(const NodeShare&) = delete;

  /// Ranks of this node in the restore (1: nothing is shared, and nothing here communicates).
  int node_size() const noexcept { return node_.size(); }

  /// Collective over the node. First agrees on `earlier` (a failure of this rank while it listed
  /// its needs). `needs`: every piece this rank needs. Every rank of the node learns which pieces
  /// two or more of them need, and picks the same reader for each: the rank that wrote it when
  /// that keeps the readers' loads within about a piece of each other (its read-ahead may hold
  /// it), else the least loaded one.
  void plan(std::vector<PieceNeed> needs, int64_t staging_bytes, const Error* earlier);
  /// The pieces this rank gets through run(), not through its own reads.
  const std::unordered_set<const PieceRecord*>& supplied() const noexcept { return supplied_; }
  /// Local. When this rank reads one batch for the node, all of it packed, queues those reads on
  /// `packed` (this rank's own packed reads), so that they share its merged windows instead of
  /// reading the same windows again; run() then only broadcasts the batch. The caller runs
  /// `packed` (which verifies every piece) before run(). Returns the bytes queued.
  int64_t queue_own_reads(PackedReadBatch& packed);

  /// Collective over the node. First agrees on `earlier` (a failure of this rank's other reads):
  /// if any rank of the node failed, all of them throw the same error. Then, round by round, each
  /// reader reads and verifies a batch of at most half the staging bytes (or one piece), the
  /// node agrees (a checksum failure reaches every rank of the node as the reader's error), and
  /// each reader's batch is broadcast in one message and copied into the ranks that need it.
  void run(ContainerReader& reader, const Error* earlier);

  /// Piece bytes this rank read from the file for the node, and received from the node's readers.
  int64_t bytes_read() const noexcept { return bytes_read_; }
  int64_t bytes_received() const noexcept { return bytes_received_; }

 private:
  struct Shared {
    PieceKey key;
    int64_t bytes;
    int reader;         // node rank
    int64_t need = -1;  // index in needs_, if this rank needs it (always, for its reader)
  };
  // Shared pieces [first, last) of one reader's round.
  struct Batch {
    std::size_t first, last;
    int64_t bytes;
  };
  void broadcast(std::byte* data, int64_t bytes, int root) const;

  Comm node_;
  std::vector<int64_t> session_ranks_;       // per node rank
  std::vector<PieceNeed> needs_;             // this rank's, by key
  std::vector<Shared> shared_;               // grouped by reader, by key within a reader
  std::vector<std::vector<Batch>> batches_;  // per node rank, its rounds
  std::unordered_set<const PieceRecord*> supplied_;
  int64_t batch_capacity_ = 0;
  TransientBuffer own_;  // this rank's batch, when queued on its own reads
  bool own_queued_ = false;
  int64_t bytes_read_ = 0;
  int64_t bytes_received_ = 0;
};

}  // namespace cairn::detail
