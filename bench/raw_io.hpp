// SPDX-License-Identifier: Apache-2.0
#pragma once
// The ceiling: the same bytes written to (and read from) one shared new file with plain MPI-IO, on
// the same file system, in the same run.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace cairn::bench {

struct RawResult {
  double seconds = 0;  // slowest rank, from open to after sync and close
  bool ok = true;
};

/// Collective over `comm`. Deletes `path`, then creates it and writes `bytes` bytes of `data` at
/// `offset` on every rank, with MPI_File_write_at_all (`collective`) or MPI_File_write_at, then
/// MPI_File_sync and close. The deletion is not timed.
RawResult raw_write(MPI_Comm comm, const std::string& path, const std::byte* data, int64_t bytes,
                    int64_t offset, bool collective);

/// Collective over `comm`. Reads `bytes` bytes at `offset` of `path` into `data` with
/// MPI_File_read_at_all (`collective`) or MPI_File_read_at.
RawResult raw_read(MPI_Comm comm, const std::string& path, std::byte* data, int64_t bytes,
                   int64_t offset, bool collective);

}  // namespace cairn::bench
