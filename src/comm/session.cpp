// SPDX-License-Identifier: Apache-2.0
#include "cairn/comm/session.hpp"

#include <cstdint>
#include <vector>

#include "core/log.hpp"

namespace cairn {
namespace {

// Runs before the Comm member is built, so that no MPI call is made on an uninitialized MPI.
MPI_Comm require_initialized(MPI_Comm comm) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!initialized) throw Error(ErrorCode::kInvalidArgument, "MPI is not initialized");
  if (finalized) throw Error(ErrorCode::kInvalidArgument, "MPI is already finalized");
  if (comm == MPI_COMM_NULL)
    throw Error(ErrorCode::kInvalidArgument, "Session needs a communicator, got MPI_COMM_NULL");
  return comm;
}

}  // namespace

Session::Session(MPI_Comm comm, SessionOptions options)
    : comm_(require_initialized(comm)), background_comm_(comm), options_(options) {
  options_.log = detail::with_log_environment(std::move(options_.log));
  check_mpi(MPI_Query_thread(&thread_level_), "MPI_Query_thread");
  // Both checks go through one reduction, so that every rank throws the same error: a rank that
  // threw alone would leave the others waiting in it. A restore with kOncePerNode makes collective
  // calls among a node's ranks that kEveryRank does not make: ranks that disagree would hang there.
  const bool sizes_valid =
      options_.pack_threshold_bytes >= 0 && options_.piece_bytes > 0 && options_.staging_bytes > 0;
  const auto mode = static_cast<int64_t>(options_.replicated_reads);
  std::vector<int64_t> checks{sizes_valid ? -1 : comm_.rank(), mode, -mode};
  comm_.allreduce_max(checks);
  if (checks[0] >= 0)
    throw Error(ErrorCode::kInvalidArgument,
                "SessionOptions: pack_threshold_bytes must be >= 0 and piece_bytes, staging_bytes "
                "> 0 (not so on rank " +
                    std::to_string(checks[0]) + ")",
                {.rank = static_cast<int>(checks[0])});
  if (checks[1] != -checks[2])
    throw Error(ErrorCode::kInvalidArgument,
                "SessionOptions: replicated_reads differs between ranks; set it the same on every "
                "rank");
}

}  // namespace cairn
