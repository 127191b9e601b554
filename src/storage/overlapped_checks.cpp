// SPDX-License-Identifier: Apache-2.0
#include "storage/overlapped_checks.hpp"

namespace cairn::detail {

OverlappedChecks::~OverlappedChecks() {
  if (pending_.valid()) pending_.wait();
}

void OverlappedChecks::submit(int64_t bytes, std::function<void()> job) {
  finish();
  if (bytes < kMinOverlapBytes) return job();
  pending_ = std::async(std::launch::async, std::move(job));
}

void OverlappedChecks::finish() {
  if (pending_.valid()) pending_.get();
}

}  // namespace cairn::detail
