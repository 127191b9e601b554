// SPDX-License-Identifier: Apache-2.0
#pragma once
// A Session is the library's handle on an MPI job: its own duplicated communicator and settings.
#include <mpi.h>

#include "cairn/comm/comm.hpp"
#include "cairn/core/log.hpp"

namespace cairn {

/// How tensor data is written through MPI-IO. Independent avoids two-phase aggregation, which on
/// contiguous per-rank shards only adds copies; collective suits many small, interleaved boxes.
/// Restores always read independently (each rank reads only what it needs).
enum class IoMode { kIndependent, kCollective };

/// Who reads a saved piece that several restoring ranks of one node need (a replicated tensor, or
/// on a restore in another layout a saved box that straddles several ranks' boxes). kEveryRank:
/// each of them reads it from the file. kOncePerNode: one rank of the node (ranks grouped by
/// MPI_COMM_TYPE_SHARED) reads and verifies it, and broadcasts it to the others. That spares a
/// parallel file system the same bytes read many times per node; on one node with a warm page
/// cache, every rank reading was measured faster (docs/performance.md).
enum class ReplicatedReads { kEveryRank, kOncePerNode };

struct SessionOptions {
  IoMode write_mode = IoMode::kIndependent;
  /// Tensors with at most this many bytes in total are packed into shared byte datasets.
  int64_t pack_threshold_bytes = int64_t{1} << 20;
  /// Checksummed pieces are at most this large; restores read whole pieces.
  int64_t piece_bytes = int64_t{4} << 20;
  /// Upper bound for staging buffers used while redistributing on restore.
  int64_t staging_bytes = int64_t{64} << 20;
  /// On a restore at the saved job size, each rank reads the packed region it wrote into at most
  /// this many bytes of buffers on a helper thread from the moment the file is open, while the
  /// manifest is read, decoded and matched (files of format 1.1 and later). 0: off.
  int64_t read_ahead_bytes = int64_t{64} << 20;
  /// Collective restores only; deferred restores (objects attached later) always read alone.
  ReplicatedReads replicated_reads = ReplicatedReads::kEveryRank;
  /// Before a save creates its file, the file's first rank asks the file system (statvfs) how
  /// much room is left; when that is less than the save's data and cairn's metadata, every rank
  /// throws the same ErrorCode::kIo ("No space ...") and nothing is written. Turn it off where the
  /// free space statvfs reports is not what a write can use (some FUSE and object-store mounts);
  /// a full disk is then found by the writes themselves (the save fails the same way, later).
  bool check_free_space = true;
  /// What the library logs and where (include/cairn/core/log.hpp); CAIRN_LOG, read when the
  /// Session is created, overrides the level.
  LogOptions log;
};

class Session {
 public:
  /// Collective over `comm`. Duplicates `comm`; MPI must be initialized.
  explicit Session(MPI_Comm comm, SessionOptions options = {});

  const Comm& comm() const noexcept { return comm_; }
  /// A second duplicate, used only by background (asynchronous) saves so that their collectives
  /// never mix with those of the calling thread or of the user's communicators.
  const Comm& background_comm() const noexcept { return background_comm_; }
  int rank() const noexcept { return comm_.rank(); }
  int size() const noexcept { return comm_.size(); }
  const SessionOptions& options() const noexcept { return options_; }
  /// The thread level MPI was initialized with (MPI_THREAD_*).
  int thread_level() const noexcept { return thread_level_; }

 private:
  Comm comm_;
  Comm background_comm_;
  SessionOptions options_;
  int thread_level_ = MPI_THREAD_SINGLE;
};

}  // namespace cairn
