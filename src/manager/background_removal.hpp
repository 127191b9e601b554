// SPDX-License-Identifier: Apache-2.0
#pragma once
// Deleting retired checkpoint files off the caller's path. Freeing a RAM disk's pages costs about
// as much as writing them (0.13 s per GiB on the machine of docs/performance.md, a part and its
// partner copy per node and per retired checkpoint), and nothing reads a retired copy again: the
// state file stopped naming it before its deletion starts. So the deletion runs on a helper thread
// while training goes on, and the manager waits for it only where the directory must be quiet:
// before its next save or restore, in wait() and in its destructor.
#include <functional>
#include <future>
#include <string>
#include <vector>

namespace cairn::detail {

/// Log lines of one batch of deletions: what failed (warnings) and what was deleted (debug).
struct RemovalOutcome {
  std::vector<std::string> failures;
  std::vector<std::string> deleted;
  double seconds = 0;  // time the deletions took, on the helper thread
};

class BackgroundRemoval {
 public:
  using Outcome = RemovalOutcome;
  using Job = std::function<Outcome()>;

  BackgroundRemoval() = default;
  /// Waits for the batch in flight; its lines are dropped (nobody is left to log them).
  ~BackgroundRemoval();
  BackgroundRemoval(const BackgroundRemoval&) = delete;
  BackgroundRemoval& operator=(const BackgroundRemoval&) = delete;

  /// Starts `job` on a helper thread, after the batch in flight; runs it on the calling thread if
  /// no thread can be started. If `job` throws, the exception's text is one failure line.
  void start(const Job& job);
  /// Waits for the batch in flight and returns the outcome of every batch since the last call.
  Outcome finish();

 private:
  std::future<Outcome> running_;
  Outcome done_;  // batches finished but not yet handed out by finish()
};

}  // namespace cairn::detail
