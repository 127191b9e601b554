// SPDX-License-Identifier: Apache-2.0
#include "raw_io.hpp"

#include <unistd.h>

#include <algorithm>

#include "bench_util.hpp"

namespace cairn::bench {
namespace {

// MPI counts are ints: transfers go in chunks of at most 512 MiB.
constexpr int64_t kChunk = int64_t{512} << 20;

template <class Op>
RawResult run(MPI_Comm comm, const std::string& path, int amode, int64_t bytes, bool collective,
              bool sync, Op op) {
  const int64_t chunks = max_over(comm, (bytes + kChunk - 1) / kChunk);
  idle_barrier(comm);
  const double t0 = now();
  MPI_File file;
  int rc = MPI_File_open(comm, path.c_str(), amode, MPI_INFO_NULL, &file);
  bool ok = rc == MPI_SUCCESS;
  if (ok) {
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = std::min(bytes, c * kChunk);
      const int64_t count = std::min(bytes, begin + kChunk) - begin;
      ok = op(file, begin, static_cast<int>(count)) == MPI_SUCCESS && ok;
      if (!collective && count == 0) break;
    }
    if (sync) ok = MPI_File_sync(file) == MPI_SUCCESS && ok;
    ok = MPI_File_close(&file) == MPI_SUCCESS && ok;
  }
  RawResult result;
  result.seconds = max_over(comm, now() - t0);
  int all = ok ? 1 : 0, agreed = 0;
  MPI_Allreduce(&all, &agreed, 1, MPI_INT, MPI_MIN, comm);
  result.ok = agreed == 1;
  return result;
}

}  // namespace

RawResult raw_write(MPI_Comm comm, const std::string& path, const std::byte* data, int64_t bytes,
                    int64_t offset, bool collective) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) ::unlink(path.c_str());
  idle_barrier(comm);
  return run(
      comm, path, MPI_MODE_CREATE | MPI_MODE_WRONLY, bytes, collective, true,
      [&](MPI_File f, int64_t begin, int count) {
        const void* p = data + begin;
        return collective
                   ? MPI_File_write_at_all(f, offset + begin, p, count, MPI_BYTE, MPI_STATUS_IGNORE)
                   : MPI_File_write_at(f, offset + begin, p, count, MPI_BYTE, MPI_STATUS_IGNORE);
      });
}

RawResult raw_read(MPI_Comm comm, const std::string& path, std::byte* data, int64_t bytes,
                   int64_t offset, bool collective) {
  return run(
      comm, path, MPI_MODE_RDONLY, bytes, collective, false,
      [&](MPI_File f, int64_t begin, int count) {
        void* p = data + begin;
        return collective
                   ? MPI_File_read_at_all(f, offset + begin, p, count, MPI_BYTE, MPI_STATUS_IGNORE)
                   : MPI_File_read_at(f, offset + begin, p, count, MPI_BYTE, MPI_STATUS_IGNORE);
      });
}

}  // namespace cairn::bench
