// SPDX-License-Identifier: Apache-2.0
#pragma once
// The engine of `cairn verify`: one checkpoint checked by a group of ranks, the verdict on rank 0.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "cairn/inspect/verify.hpp"
#include "comm/wire.hpp"
#include "inspect/probe.hpp"

namespace cairn::inspect::detail {

/// The ranks that verify together: a communicator, or this process alone. Messages between them
/// are wire messages, like every other message cairn sends between ranks.
class Group {
 public:
  explicit Group(const Comm* comm) : comm_(comm) {}
  int rank() const noexcept { return comm_ ? comm_->rank() : 0; }
  int size() const noexcept { return comm_ ? comm_->size() : 1; }
  /// Collective. Rank 0's `message` on every rank.
  void broadcast(wire::Message& message) const;
  /// Collective. Every rank's `message`, in rank order, on every rank.
  std::vector<wire::Message> allgather(const wire::Message& message) const;
  /// Collective. Every rank's `message` on rank 0 (empty elsewhere).
  std::vector<wire::Message> gather(const wire::Message& message) const;
  /// Collective. Runs `fn`; an exception on any rank becomes the same cairn::Error on every rank.
  void run_agreed(const std::function<void()>& fn) const;

 private:
  const Comm* comm_;
};

struct CheckpointVerdict {
  std::string path;
  FileStatus status = FileStatus::kMissing;
  std::string
      verdict;  // "ok", "damaged", "not-a-checkpoint", "unsupported", "unreadable", "missing"
  std::string format_version;
  int64_t save_counter = -1;
  int world_size = 0;
  int64_t committed_unix = -1;
  int64_t tensors = 0;
  int64_t states = 0;
  int64_t datasets_checked = 0;
  int64_t pieces_checked = 0;
  int64_t blobs_checked = 0;
  int64_t bytes_checked = 0;
  int64_t problems_total = 0;
  std::vector<Problem> problems;  // the first max_problems, in manifest order
  /// A part file (format 2.1): only its writers' data was checked, not the whole checkpoint.
  std::optional<PartInfo> part;
};

/// Collective over `group`. Verifies one checkpoint file; the verdict is complete on rank 0 only.
CheckpointVerdict verify_checkpoint(const Group& group, const std::string& path,
                                    const VerifyOptions& options);

}  // namespace cairn::inspect::detail
