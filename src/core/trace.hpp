// SPDX-License-Identifier: Apache-2.0
#pragma once
// Phase timings for operators and for tuning: with CAIRN_TRACE=1 in the environment, rank 0 prints
// one line per phase of every save and restore to stderr ("cairn trace [rank 0] save
// '/run/ckpt-3.h5': write data 0.0120 s, 1048576 bytes"); CAIRN_TRACE=all prints every rank's.
// Unset, a phase costs one clock read.
#include <chrono>
#include <cstdint>
#include <string>

namespace cairn::detail {

class PhaseTrace {
 public:
  /// `operation` must outlive the trace (a string literal); `path` is the checkpoint's.
  PhaseTrace(const char* operation, int rank, const std::string& path);
  /// Ends the current phase, named `phase` (a string literal), and starts the next. `bytes`, if
  /// not negative, is what this rank moved in the phase.
  void mark(const char* phase, int64_t bytes = -1);

 private:
  const char* operation_;
  int rank_;
  bool enabled_;
  std::string path_;  // only kept when enabled; control characters escaped (printable())
  std::chrono::steady_clock::time_point last_;
};

}  // namespace cairn::detail
