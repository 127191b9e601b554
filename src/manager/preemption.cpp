// SPDX-License-Identifier: Apache-2.0
#include "cairn/manager/preemption.hpp"

#include <atomic>

namespace cairn {
namespace {

volatile std::sig_atomic_t g_signalled = 0;

extern "C" void record_signal(int) {
  g_signalled = 1;
}

}  // namespace

PreemptionHandler::PreemptionHandler(std::vector<int> signals) {
  for (int sig : signals) {
    struct sigaction action {};
    action.sa_handler = record_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    struct sigaction old {};
    if (sigaction(sig, &action, &old) == 0) previous_.emplace_back(sig, old);
  }
}

PreemptionHandler::~PreemptionHandler() {
  for (auto& [sig, old] : previous_) sigaction(sig, &old, nullptr);
}

bool preemption_signalled() noexcept {
  return g_signalled != 0;
}

void reset_preemption_signal() noexcept {
  g_signalled = 0;
}

bool preemption_requested(const Session& session) {
  return session.comm().allreduce_max(preemption_signalled() ? 1 : 0) != 0;
}

}  // namespace cairn
