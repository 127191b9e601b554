// SPDX-License-Identifier: Apache-2.0
#include "core/trace.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/printable.hpp"

namespace cairn::detail {
namespace {

bool trace_enabled(int rank) {
  const char* value = std::getenv("CAIRN_TRACE");
  if (!value || !*value || std::strcmp(value, "0") == 0) return false;
  return rank == 0 || std::strcmp(value, "all") == 0;
}

}  // namespace

PhaseTrace::PhaseTrace(const char* operation, int rank, const std::string& path)
    : operation_(operation),
      rank_(rank),
      enabled_(trace_enabled(rank)),
      path_(enabled_ ? printable(path) : std::string()),
      last_(std::chrono::steady_clock::now()) {}

void PhaseTrace::mark(const char* phase, int64_t bytes) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  if (bytes >= 0)
    std::fprintf(stderr, "cairn trace [rank %d] %s '%s': %s %.4f s, %lld bytes\n", rank_,
                 operation_, path_.c_str(), phase, seconds, static_cast<long long>(bytes));
  else
    std::fprintf(stderr, "cairn trace [rank %d] %s '%s': %s %.4f s\n", rank_, operation_,
                 path_.c_str(), phase, seconds);
  last_ = now;
}

}  // namespace cairn::detail
