// SPDX-License-Identifier: Apache-2.0
#include "cairn/comm/comm.hpp"

#include "comm/wire.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <new>
#include <optional>
#include <utility>

namespace cairn {
namespace {

// MPI counts are int; large payloads are broadcast in slices of this many bytes.
constexpr int64_t kMaxMessageBytes = int64_t{1} << 30;

// Every rank evaluates the same sizes, so every rank throws together (never one rank alone).
std::vector<int> to_int_counts(const std::vector<int64_t>& sizes, const char* what) {
  std::vector<int> counts(sizes.size());
  int64_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    if (sizes[i] > INT_MAX || total > INT_MAX)
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(what) + ": " + std::to_string(total) +
                      " bytes in total exceed the 2 GiB limit of MPI int counts");
    counts[i] = static_cast<int>(sizes[i]);
  }
  return counts;
}

std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> displs(counts.size(), 0);
  for (std::size_t i = 1; i < counts.size(); ++i) displs[i] = displs[i - 1] + counts[i - 1];
  return displs;
}

std::vector<std::string> split(const std::string& joined, const std::vector<int>& counts) {
  std::vector<std::string> parts;
  parts.reserve(counts.size());
  std::size_t at = 0;
  for (int count : counts) {
    parts.emplace_back(joined, at, static_cast<std::size_t>(count));
    at += static_cast<std::size_t>(count);
  }
  return parts;
}

}  // namespace

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS)
    length = std::snprintf(text, sizeof text, "MPI error code %d", rc);
  throw Error(ErrorCode::kMpi, std::string(what) + " failed: " + std::string(text, length));
}

Comm::Comm(MPI_Comm parent) {
  check_mpi(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
  try {
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  } catch (...) {
    release();
    throw;
  }
}

Comm::~Comm() {
  release();
}

Comm::Comm(Comm&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      rank_(other.rank_),
      size_(other.size_),
      node_rank_(other.node_rank_.load()),
      io_cache_(std::move(other.io_cache_)) {}

Comm& Comm::operator=(Comm&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    rank_ = other.rank_;
    size_ = other.size_;
    node_rank_.store(other.node_rank_.load());
    io_cache_ = std::move(other.io_cache_);
  }
  return *this;
}

namespace {

// Collective over `comm`. Its ranks on this rank's node, in `comm`'s order; the caller frees it.
MPI_Comm split_by_node(MPI_Comm comm, int rank) {
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type(shared)");
  return node;
}

}  // namespace

Comm Comm::node() const {
  MPI_Comm split = split_by_node(comm_, rank_);
  try {
    Comm node(split);
    MPI_Comm_free(&split);
    node_rank_.store(node.rank(), std::memory_order_relaxed);
    return node;
  } catch (...) {
    MPI_Comm_free(&split);
    throw;
  }
}

int Comm::node_rank() const {
  if (const int known = node_rank_.load(std::memory_order_relaxed); known >= 0) return known;
  MPI_Comm split = split_by_node(comm_, rank_);
  int rank = 0;
  const int rc = MPI_Comm_rank(split, &rank);
  MPI_Comm_free(&split);
  check_mpi(rc, "MPI_Comm_rank(node)");
  node_rank_.store(rank, std::memory_order_relaxed);
  return rank;
}

void Comm::release() noexcept {
  io_cache_.reset();  // first: what it holds may refer to the communicator
  if (comm_ == MPI_COMM_NULL) return;
  // A Comm that outlives MPI_Finalize (a static, a leaked shared_ptr) must not call into MPI.
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
}

void Comm::barrier() const {
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
}

int64_t Comm::allreduce_sum(int64_t value) const {
  int64_t result = 0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_SUM, comm_), "MPI_Allreduce(sum)");
  return result;
}

int64_t Comm::allreduce_max(int64_t value) const {
  int64_t result = 0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_MAX, comm_), "MPI_Allreduce(max)");
  return result;
}

int64_t Comm::allreduce_min(int64_t value) const {
  int64_t result = 0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_MIN, comm_), "MPI_Allreduce(min)");
  return result;
}

uint64_t Comm::allreduce_bor(uint64_t value) const {
  uint64_t result = 0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_UINT64_T, MPI_BOR, comm_), "MPI_Allreduce(bor)");
  return result;
}

void Comm::allreduce_max(std::vector<int64_t>& values) const {
  if (values.size() > static_cast<std::size_t>(INT_MAX))
    throw Error(ErrorCode::kInvalidArgument, "allreduce_max: too many values");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_INT64_T,
                          MPI_MAX, comm_),
            "MPI_Allreduce(max, vector)");
}

std::vector<int64_t> Comm::allgather(int64_t value) const {
  std::vector<int64_t> values(static_cast<std::size_t>(size_));
  check_mpi(MPI_Allgather(&value, 1, MPI_INT64_T, values.data(), 1, MPI_INT64_T, comm_),
            "MPI_Allgather");
  return values;
}

namespace {

// Collective. `bytes` (sized alike on every rank) from `root`, in slices: MPI counts are int.
void broadcast_in_slices(std::string& bytes, int root, MPI_Comm comm) {
  const auto size = static_cast<int64_t>(bytes.size());
  for (int64_t at = 0; at < size; at += kMaxMessageBytes) {
    const int slice = static_cast<int>(std::min(kMaxMessageBytes, size - at));
    check_mpi(MPI_Bcast(bytes.data() + at, slice, MPI_BYTE, root, comm), "MPI_Bcast(bytes)");
  }
}

}  // namespace

void Comm::broadcast(std::string& bytes, int root) const {
  int64_t size = static_cast<int64_t>(bytes.size());
  check_mpi(MPI_Bcast(&size, 1, MPI_INT64_T, root, comm_), "MPI_Bcast(size)");
  if (rank_ != root) bytes.assign(static_cast<std::size_t>(size), '\0');
  broadcast_in_slices(bytes, root, comm_);
}

void Comm::broadcast_agreed(const std::vector<std::string*>& parts, int root,
                            const Error* root_failure) const {
  std::vector<int64_t> sizes{rank_ == root && root_failure ? 1 : 0};
  for (const std::string* part : parts) sizes.push_back(static_cast<int64_t>(part->size()));
  check_mpi(MPI_Bcast(sizes.data(), static_cast<int>(sizes.size()), MPI_INT64_T, root, comm_),
            "MPI_Bcast(sizes)");
  if (sizes[0] != 0) agree(rank_ == root ? root_failure : nullptr);
  // One datatype of every part while their total fits an int count (some MPI libraries mishandle a
  // datatype larger than that).
  int64_t total = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (rank_ != root) parts[i]->assign(static_cast<std::size_t>(sizes[i + 1]), '\0');
    total += sizes[i + 1];
  }
  const bool small = total < kMaxMessageBytes;
  if (!small) {
    for (std::string* part : parts) broadcast_in_slices(*part, root, comm_);
    return;
  }
  // One broadcast of every part in place: a datatype of the parts' own addresses.
  std::vector<int> lengths;
  std::vector<MPI_Aint> addresses;
  for (std::string* part : parts) {
    MPI_Aint address = 0;
    check_mpi(MPI_Get_address(part->data(), &address), "MPI_Get_address");
    lengths.push_back(static_cast<int>(part->size()));
    addresses.push_back(address);
  }
  MPI_Datatype type = MPI_DATATYPE_NULL;
  check_mpi(MPI_Type_create_hindexed(static_cast<int>(parts.size()), lengths.data(),
                                     addresses.data(), MPI_BYTE, &type),
            "MPI_Type_create_hindexed");
  const int committed = MPI_Type_commit(&type);
  const int sent =
      committed == MPI_SUCCESS ? MPI_Bcast(MPI_BOTTOM, 1, type, root, comm_) : committed;
  MPI_Type_free(&type);
  check_mpi(committed, "MPI_Type_commit");
  check_mpi(sent, "MPI_Bcast(parts)");
}

std::vector<std::string> Comm::gather(const std::string& bytes, int root) const {
  // Sizes go to every rank so that an oversized total fails on every rank, not on the root alone.
  return gather_sized(bytes, root, allgather(static_cast<int64_t>(bytes.size())));
}

std::vector<std::string> Comm::gather_agreed(const std::string& bytes, int root,
                                             const Error* local_failure) const {
  return gather_sized(bytes, root,
                      allgather_agreed({static_cast<int64_t>(bytes.size())}, local_failure));
}

std::vector<std::string> Comm::gather_sized(const std::string& bytes, int root,
                                            const std::vector<int64_t>& sizes) const {
  const std::vector<int> counts = to_int_counts(sizes, "gather");
  const std::vector<int> displs = displacements(counts);
  std::string joined;
  if (rank_ == root) joined.resize(static_cast<std::size_t>(displs.back() + counts.back()));
  check_mpi(MPI_Gatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, joined.data(),
                        counts.data(), displs.data(), MPI_BYTE, root, comm_),
            "MPI_Gatherv");
  if (rank_ != root) return {};
  return split(joined, counts);
}

std::vector<std::string> Comm::allgather(const std::string& bytes) const {
  const std::vector<int> counts =
      to_int_counts(allgather(static_cast<int64_t>(bytes.size())), "allgather");
  const std::vector<int> displs = displacements(counts);
  std::string joined(static_cast<std::size_t>(displs.back() + counts.back()), '\0');
  check_mpi(MPI_Allgatherv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, joined.data(),
                           counts.data(), displs.data(), MPI_BYTE, comm_),
            "MPI_Allgatherv");
  return split(joined, counts);
}

void Comm::agree(const Error* local_failure) const {
  const int64_t lowest_failed = allreduce_min(local_failure ? rank_ : size_);
  if (lowest_failed == size_) return;

  const int64_t failed_ranks = allreduce_sum(local_failure ? 1 : 0);
  // The whole error travels, not its text: every rank rethrows it with its code and context.
  wire::Message error;
  if (rank_ == lowest_failed) {
    error = wire::from_error(*local_failure);
    // An error an inner agreement settled is on every rank of that step: counting them all again
    // here would report ranks as failed that only relayed it.
    if (!local_failure->agreed()) error["failed_ranks"] = failed_ranks;
  }
  wire::broadcast(*this, error, static_cast<int>(lowest_failed));
  throw wire::to_error(error);
}

void Comm::run_agreed(const std::function<void()>& fn) const {
  const std::optional<Error> failure = run_local(fn);
  agree(failure ? &*failure : nullptr);
}

std::optional<Error> Comm::run_local(const std::function<void()>& fn) const {
  try {
    fn();
  } catch (...) {
    return current_exception_as_error(ErrorContext{.rank = rank_});
  }
  return std::nullopt;
}

void Comm::allreduce_max_agreed(std::vector<int64_t>& values, const Error* local_failure) const {
  values.push_back(local_failure ? 1 : 0);
  allreduce_max(values);
  const bool failed = values.back() != 0;
  values.pop_back();
  if (failed) agree(local_failure);
}

int64_t Comm::allreduce_sum_agreed(int64_t value, const Error* local_failure) const {
  std::array<int64_t, 2> values{value, local_failure ? 1 : 0};
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), 2, MPI_INT64_T, MPI_SUM, comm_),
            "MPI_Allreduce(sum, agreed)");
  if (values[1] != 0) agree(local_failure);
  return values[0];
}

std::vector<int64_t> Comm::allgather_agreed(std::vector<int64_t> values,
                                            const Error* local_failure) const {
  const std::size_t count = values.size() + 1;
  if (count > static_cast<std::size_t>(INT_MAX) / static_cast<std::size_t>(size_))
    throw Error(ErrorCode::kInvalidArgument, "allgather_agreed: too many values");
  values.push_back(local_failure ? 1 : 0);
  std::vector<int64_t> all(count * static_cast<std::size_t>(size_));
  check_mpi(MPI_Allgather(values.data(), static_cast<int>(count), MPI_INT64_T, all.data(),
                          static_cast<int>(count), MPI_INT64_T, comm_),
            "MPI_Allgather(agreed)");
  bool failed = false;
  std::vector<int64_t> gathered;
  gathered.reserve((count - 1) * static_cast<std::size_t>(size_));
  for (std::size_t r = 0; r < static_cast<std::size_t>(size_); ++r) {
    const auto first = all.begin() + static_cast<std::ptrdiff_t>(r * count);
    gathered.insert(gathered.end(), first, first + static_cast<std::ptrdiff_t>(count - 1));
    failed = failed || *(first + static_cast<std::ptrdiff_t>(count - 1)) != 0;
  }
  if (failed) agree(local_failure);
  return gathered;
}

}  // namespace cairn
