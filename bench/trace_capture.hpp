// SPDX-License-Identifier: Apache-2.0
#pragma once
// Rank 0's phase times of one save or restore, as the library itself reports them with
// CAIRN_TRACE=1 (docs/operations.md): its stderr is captured around the call and the trace lines
// are parsed; anything else it printed is passed on to stderr.
#include <map>
#include <string>

namespace cairn::bench {

class TraceCapture {
 public:
  /// Local. Starts capturing this process's stderr if `enabled` (else does nothing).
  explicit TraceCapture(bool enabled);
  ~TraceCapture();
  TraceCapture(const TraceCapture&) = delete;
  TraceCapture& operator=(const TraceCapture&) = delete;

  /// Local. Stops capturing and returns the seconds of each traced phase (summed if a phase
  /// appears more than once), keyed "operation: phase", e.g. "restore: open and read the manifest".
  std::map<std::string, double> finish();

 private:
  int saved_fd_ = -1;
  int file_fd_ = -1;
};

}  // namespace cairn::bench
