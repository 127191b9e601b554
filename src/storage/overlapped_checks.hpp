// SPDX-License-Identifier: Apache-2.0
#pragma once
// Restores read block after block; verifying a block (checksums, copies into the targets) while
// the next one is being read keeps the disk busy, instead of leaving it idle during every
// verification. One job runs at a time, on a helper thread; its error reaches the caller at the
// next submit() or finish().
#include <functional>
#include <future>

namespace cairn::detail {

class OverlappedChecks {
 public:
  /// Blocks smaller than this are verified on the calling thread: a thread start would cost more
  /// than the overlap gains.
  static constexpr int64_t kMinOverlapBytes = int64_t{4} << 20;

  OverlappedChecks() = default;
  OverlappedChecks(const OverlappedChecks&) = delete;
  OverlappedChecks& operator=(const OverlappedChecks&) = delete;
  /// Waits for the job in flight; its error, if any, is dropped (an error is already unwinding).
  ~OverlappedChecks();

  /// Waits for the previous job (rethrowing its error), then runs `job` in the background when
  /// `bytes` is large enough to be worth it, else right here.
  void submit(int64_t bytes, std::function<void()> job);
  /// Waits for the job in flight, rethrowing its error.
  void finish();

 private:
  std::future<void> pending_;
};

}  // namespace cairn::detail
