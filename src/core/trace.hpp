#pragma once
// Phase timings for operators and for tuning: with CAIRN_TRACE=1 in the environment, rank 0 prints
// one line per phase of every save and restore to stderr ("cairn trace [rank 0] save: checksums
// 0.012 s"); CAIRN_TRACE=all prints every rank's. Unset, a phase costs one clock read.
#include <chrono>

namespace cairn::detail {

class PhaseTrace {
 public:
  /// `operation` must outlive the trace (a string literal).
  PhaseTrace(const char* operation, int rank);
  /// Ends the current phase, named `phase` (a string literal), and starts the next.
  void mark(const char* phase);

 private:
  const char* operation_;
  int rank_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace cairn::detail
