// SPDX-License-Identifier: Apache-2.0
#pragma once
// The object restore() and read() return, with tf.train.Checkpoint's four checks. The checks are
// collective and global: every rank gets the same verdict and the same message.
#include <memory>
#include <string>

namespace cairn {

namespace detail {
class RestoreContext;
}

/// What a restore has matched so far, summed over all ranks.
struct RestoreSummary {
  int64_t checkpoint_objects = 0;      // objects in the checkpoint's graph (excluding the root)
  int64_t matched_objects = 0;         // of those, matched on every rank
  int64_t checkpoint_values = 0;       // tensors and state values in the checkpoint
  int64_t restored_values = 0;         // of those, restored (on every rank that matched them)
  int64_t unmatched_live_objects = 0;  // live objects with no checkpoint counterpart (all ranks)
  std::string details;                 // one summarized, human-readable list of what went unmatched
};

class RestoreStatus {
 public:
  explicit RestoreStatus(std::shared_ptr<detail::RestoreContext> context);
  ~RestoreStatus();
  RestoreStatus(RestoreStatus&&) noexcept;
  RestoreStatus& operator=(RestoreStatus&&) noexcept;

  /// Collective over the session. Every object and value in the checkpoint was matched and
  /// restored, and every live object in the graph was matched. Objects attached later (deferred
  /// restoration) count once attached.
  RestoreStatus& assert_consumed();
  /// Collective over the session. Every live object in the graph was matched to the checkpoint
  /// (the checkpoint may hold more objects than exist yet).
  RestoreStatus& assert_existing_objects_matched();
  /// Collective over the session. At least one object besides the root was matched.
  RestoreStatus& assert_nontrivial_match();
  /// Local. Silences the summary of unused checkpoint values printed when this status is destroyed.
  RestoreStatus& expect_partial();
  /// Collective over the session. The current accounting, for logging or custom checks.
  RestoreSummary summary() const;

  /// Local. The checkpoint this status belongs to.
  const std::string& path() const;

 private:
  std::shared_ptr<detail::RestoreContext> context_;
};

}  // namespace cairn
