// SPDX-License-Identifier: Apache-2.0
#pragma once
// The background half of an asynchronous save: one thread, one save in flight, staging memory
// kept for the next save.
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "checkpoint/save.hpp"

namespace cairn::detail {

class AsyncSaver {
 public:
  AsyncSaver() = default;
  ~AsyncSaver();
  AsyncSaver(const AsyncSaver&) = delete;
  AsyncSaver& operator=(const AsyncSaver&) = delete;

  /// Local. Staging memory of at least `bytes` bytes, reused across saves; grown pages are touched
  /// now so that the copy into them runs at memory speed.
  std::byte* staging(int64_t bytes);
  /// Local. Starts commit_save() of `prepared` (already staged) on `comm` in the background.
  void start(const Comm& comm, PreparedSave prepared, std::function<void()> after_commit,
             std::function<void(const Comm&)> after_save);
  /// Local. Joins the background save; returns its stats or rethrows its error.
  SaveStats wait();
  bool pending() const noexcept { return thread_.joinable(); }
  const std::string& path() const noexcept { return prepared_.path; }
  /// Local. The finished save's plan, for a PlanCache (after a successful wait()).
  PreparedSave release_prepared() { return std::move(prepared_); }
  int64_t staging_capacity() const noexcept { return static_cast<int64_t>(staging_.size()); }

 private:
  std::thread thread_;
  std::exception_ptr error_;
  SaveStats stats_;
  PreparedSave prepared_;
  int rank_ = 0;  // for the warning of a failed save nobody waited for
  std::vector<std::byte> staging_;
};

}  // namespace cairn::detail
