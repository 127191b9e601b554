// SPDX-License-Identifier: Apache-2.0
#include "bench_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

namespace cairn::bench {
namespace {

int64_t status_field_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0) return std::stoll(line.substr(n + 1)) * 1024;  // "kB"
  return 0;
}

}  // namespace

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

int64_t current_rss() {
  return status_field_bytes("VmRSS:");
}
int64_t peak_rss() {
  return status_field_bytes("VmHWM:");
}

bool drop_caches(MPI_Comm comm) {
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int node_rank = 0;
  MPI_Comm_rank(node, &node_rank);
  MPI_Comm_free(&node);
  idle_barrier(comm);
  int ok = 1;
  if (node_rank == 0) {
    ::sync();
    std::ofstream out("/proc/sys/vm/drop_caches");
    out << "3";
    out.flush();
    ok = out ? 1 : 0;
  }
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
  idle_barrier(comm);
  return all == 1;
}

void warm_free_memory(MPI_Comm comm, const std::string& dir, int64_t bytes) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string path = dir + "/scratch-" + std::to_string(rank);
  if (bytes > 0) {
    static std::vector<char> block(8 << 20, 1);
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0) {
      for (int64_t done = 0; done < bytes;) {
        const auto n = static_cast<std::size_t>(
            std::min<int64_t>(bytes - done, static_cast<int64_t>(block.size())));
        const ssize_t w = ::write(fd, block.data(), n);
        if (w <= 0) break;
        done += w;
      }
      ::fsync(fd);
      ::close(fd);
    }
    ::unlink(path.c_str());
  }
  idle_barrier(comm);
}

void idle_barrier(MPI_Comm comm) {
  MPI_Request request;
  MPI_Ibarrier(comm, &request);
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  while (!done) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  }
}

void prewarm(std::byte* data, std::size_t bytes) {
#pragma omp parallel for schedule(static)
  for (std::size_t page = 0; page < bytes; page += 4096)
    std::memset(data + page, 0, std::min<std::size_t>(4096, bytes - page));
}

double max_over(MPI_Comm comm, double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, comm);
  return out;
}

int64_t max_over(MPI_Comm comm, int64_t value) {
  int64_t out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MAX, comm);
  return out;
}

int64_t sum_over(MPI_Comm comm, int64_t value) {
  int64_t out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_SUM, comm);
  return out;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace cairn::bench
