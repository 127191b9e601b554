#include "core/trace.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cairn::detail {
namespace {

bool trace_enabled(int rank) {
  const char* value = std::getenv("CAIRN_TRACE");
  if (!value || !*value || std::strcmp(value, "0") == 0) return false;
  return rank == 0 || std::strcmp(value, "all") == 0;
}

}  // namespace

PhaseTrace::PhaseTrace(const char* operation, int rank)
    : operation_(operation), rank_(rank), enabled_(trace_enabled(rank)), last_(std::chrono::steady_clock::now()) {}

void PhaseTrace::mark(const char* phase) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  std::fprintf(stderr, "cairn trace [rank %d] %s: %s %.4f s\n", rank_, operation_, phase,
               std::chrono::duration<double>(now - last_).count());
  last_ = now;
}

}  // namespace cairn::detail
