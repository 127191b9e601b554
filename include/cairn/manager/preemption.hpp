// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checkpoint on preemption: a signal (Slurm's --signal, SIGTERM before a kill) only sets a flag;
// ranks agree at the next step boundary, so that all save the same step and exit together.
#include <csignal>
#include <vector>

#include "cairn/comm/session.hpp"

namespace cairn {

/// The exit code of a job that saved because it was asked to stop. Batch scripts requeue on it.
/// (EX_TEMPFAIL: "temporary failure, try again".)
inline constexpr int kPreemptedExitCode = 75;

/// Installs handlers for `signals` for its lifetime (restoring the previous ones after); the
/// handler only records that a signal arrived.
class PreemptionHandler {
 public:
  explicit PreemptionHandler(std::vector<int> signals = {SIGTERM, SIGUSR1});
  ~PreemptionHandler();
  PreemptionHandler(const PreemptionHandler&) = delete;
  PreemptionHandler& operator=(const PreemptionHandler&) = delete;

 private:
  std::vector<std::pair<int, struct sigaction>> previous_;
};

/// Local. Whether this process received one of the handled signals (since the last reset).
bool preemption_signalled() noexcept;
/// Local. Forgets a received signal, e.g. when a job decides to continue after saving.
void reset_preemption_signal() noexcept;
/// Collective over the session. True on every rank if any rank was signalled.
bool preemption_requested(const Session& session);

}  // namespace cairn
