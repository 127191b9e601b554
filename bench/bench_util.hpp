// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers of the benchmark: clocks, memory high-water marks, the page cache, idle waiting.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cairn::bench {

/// Seconds on a monotonic clock.
double now();

/// Local. Resets this process's peak resident set (VmHWM) to its current size. False if the kernel
/// does not allow it (then peaks are since process start).
bool reset_peak_rss();
/// Local. Current resident set (VmRSS) and peak (VmHWM) in bytes.
int64_t current_rss();
int64_t peak_rss();

/// Collective over `comm`. Flushes dirty pages and, if possible, drops the page cache on every node
/// (one rank per node does it). Returns true if the cache was dropped on every node.
bool drop_caches(MPI_Comm comm);

/// Collective over `comm`. Every rank writes `bytes` bytes to a scratch file in `dir`, syncs it and
/// deletes it, so that the page cache the next timed step allocates comes from memory that was
/// just in use. On this VM, memory the guest has not used for a few seconds is returned to the
/// host, and the first write to such a page (a page-cache page included) runs at about 0.4 GB/s:
/// without this, a timed write's speed depends on what ran before it, not on how it writes.
void warm_free_memory(MPI_Comm comm, const std::string& dir, int64_t bytes);

/// Collective over `comm`: a barrier that sleeps instead of spinning, so that ranks waiting for
/// others on an oversubscribed machine leave the cores to the ranks that work.
void idle_barrier(MPI_Comm comm);

/// Local. Touches every page of `data` (writes zeros), so that timed code never pays first-touch
/// faults: on this VM, memory idle for a while is returned to the host and refaults slowly.
void prewarm(std::byte* data, std::size_t bytes);

/// Collective over `comm`: the largest value over ranks.
double max_over(MPI_Comm comm, double value);
int64_t max_over(MPI_Comm comm, int64_t value);
int64_t sum_over(MPI_Comm comm, int64_t value);

double median(std::vector<double> values);

}  // namespace cairn::bench
