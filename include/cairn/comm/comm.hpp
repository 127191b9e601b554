// SPDX-License-Identifier: Apache-2.0
#pragma once
// A move-only communicator that owns a duplicate of the user's communicator.
#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"

namespace cairn {

class Comm {
 public:
  /// Collective over `parent`. Duplicates it and sets MPI_ERRORS_RETURN on the duplicate.
  explicit Comm(MPI_Comm parent);
  ~Comm();
  Comm(Comm&& other) noexcept;
  Comm& operator=(Comm&& other) noexcept;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  MPI_Comm get() const noexcept { return comm_; }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }

  /// Collective over the communicator.
  void barrier() const;
  int64_t allreduce_sum(int64_t value) const;
  int64_t allreduce_max(int64_t value) const;
  int64_t allreduce_min(int64_t value) const;
  uint64_t allreduce_bor(uint64_t value) const;
  void allreduce_max(std::vector<int64_t>& values) const;
  std::vector<int64_t> allgather(int64_t value) const;
  /// Broadcasts `bytes` from `root`; on other ranks `bytes` is replaced.
  void broadcast(std::string& bytes, int root) const;
  /// Broadcasts every string of `parts` from `root` (replaced elsewhere) together with `root`'s
  /// outcome: if `root_failure` (read on the root only), every rank throws what agree() throws.
  /// Two broadcasts for any number of parts under 1 GiB in all (their sizes and the outcome, then
  /// their bytes; larger ones go part by part, in slices): a job of many processes pays per
  /// collective.
  void broadcast_agreed(const std::vector<std::string*>& parts, int root,
                        const Error* root_failure) const;
  /// Gathers every rank's bytes on `root` (empty vector elsewhere).
  std::vector<std::string> gather(const std::string& bytes, int root) const;
  /// gather() and agree(local_failure) together: the agreement rides with the sizes, so a rank
  /// that failed sends nothing and every rank throws what agree() throws.
  std::vector<std::string> gather_agreed(const std::string& bytes, int root,
                                         const Error* local_failure) const;
  std::vector<std::string> allgather(const std::string& bytes) const;

  /// Collective over the communicator. Its ranks on this rank's node (MPI_COMM_TYPE_SHARED), as
  /// a communicator of their own, ranked in this one's order. Also answers node_rank().
  Comm node() const;
  /// This rank's rank among the ranks of this communicator that share its node
  /// (MPI_COMM_TYPE_SHARED; 0: the node's lowest rank). Collective over the communicator the first
  /// time, local afterwards: the answer is kept. Every shared-file save asks it (which rank of a
  /// node syncs the file); a split per save cost 22 ms at 128 processes on 2 cores. Two threads
  /// must not make the first call on one Comm at once.
  int node_rank() const;
  /// Local. Whether node_rank() is known already (then it is local).
  bool node_rank_known() const noexcept { return node_rank_.load(std::memory_order_relaxed) >= 0; }

  /// Collective over the communicator: "validate, agree, then act". Every rank passes whether its
  /// local step succeeded; if any rank failed, every rank throws the same Error (the failure of the
  /// lowest failing rank, with how many ranks failed), so no rank is left waiting in a collective.
  void agree(const Error* local_failure) const;

  /// Collective over the communicator. Runs `fn` on every rank, then agrees on the outcome: an
  /// exception on any rank becomes the same cairn::Error on every rank.
  void run_agreed(const std::function<void()>& fn) const;
  /// Local. Runs `fn` and returns what it threw as the Error run_agreed() would agree on, or
  /// nothing: the step of a later agreement that carries values too (the two calls below).
  std::optional<Error> run_local(const std::function<void()>& fn) const;
  /// Collective over the communicator. allreduce_max(values) and agree(local_failure) in one
  /// reduction: a job of many processes pays per collective, not per value. If any rank failed,
  /// every rank throws what agree() throws.
  void allreduce_max_agreed(std::vector<int64_t>& values, const Error* local_failure) const;
  /// Collective over the communicator. allreduce_sum(value) and agree(local_failure) in one
  /// reduction; if any rank failed, every rank throws what agree() throws.
  int64_t allreduce_sum_agreed(int64_t value, const Error* local_failure) const;
  /// Local. Where the storage layer keeps what it makes once per communicator (HDF5's file-access
  /// lists, whose making duplicates the communicator); not for applications. Emptied before the
  /// communicator is freed, and when a Comm outlives MPI_Finalize, so what it holds must not call
  /// MPI or HDF5 from its destructor once MPI is finalized.
  std::shared_ptr<void>& io_cache() const noexcept { return io_cache_; }

  /// Collective over the communicator. Every rank's `values` (as many on every rank), rank after
  /// rank, and agree(local_failure), in one allgather.
  std::vector<int64_t> allgather_agreed(std::vector<int64_t> values,
                                        const Error* local_failure) const;

 private:
  void release() noexcept;
  // gather() once every rank knows every rank's size.
  std::vector<std::string> gather_sized(const std::string& bytes, int root,
                                        const std::vector<int64_t>& sizes) const;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  mutable std::atomic<int> node_rank_{-1};  // -1 until node_rank() is asked
  mutable std::shared_ptr<void> io_cache_;
};

/// Throws cairn::Error(kMpi) naming `what` when `rc` is not MPI_SUCCESS.
void check_mpi(int rc, const char* what);

}  // namespace cairn
