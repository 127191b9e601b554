// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/async_saver.hpp"

#include "core/log.hpp"
#include "core/printable.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::detail {

AsyncSaver::~AsyncSaver() {
  if (!thread_.joinable()) return;
  thread_.join();
  if (!error_) return;
  // Nobody can receive the error any more: a warning is all that is left of it. Destructors must
  // not throw, so a line that cannot be composed is dropped.
  try {
    const std::string failed = "the asynchronous save of '" + printable(prepared_.path) +
                               "' failed and nobody waited for it";
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      log_line(prepared_.options.log, rank_, LogLevel::kWarning, failed + ": " + e.what());
    } catch (...) {
      log_line(prepared_.options.log, rank_, LogLevel::kWarning, failed);
    }
  } catch (...) {
  }
}

std::byte* AsyncSaver::staging(int64_t bytes) {
  if (static_cast<int64_t>(staging_.size()) < bytes) {
    staging_.clear();
    staging_.shrink_to_fit();
    staging_.resize(static_cast<std::size_t>(bytes));  // zero-filled: every page touched once
  }
  return staging_.data();
}

void AsyncSaver::start(const Comm& comm, PreparedSave prepared, std::function<void()> after_commit,
                       std::function<void(const Comm&)> after_save) {
  prepared_ = std::move(prepared);
  rank_ = comm.rank();
  error_ = nullptr;
  background_save_started();
  thread_ = std::thread(
      [this, &comm, after_commit = std::move(after_commit), after_save = std::move(after_save)] {
        try {
          stats_ = commit_save(comm, prepared_, after_commit);
          if (after_save) after_save(comm);
        } catch (...) {
          error_ = std::current_exception();
        }
        background_save_finished();
      });
}

SaveStats AsyncSaver::wait() {
  if (thread_.joinable()) thread_.join();
  if (error_) {
    std::exception_ptr error = std::exchange(error_, nullptr);
    std::rethrow_exception(error);
  }
  return stats_;
}

}  // namespace cairn::detail
