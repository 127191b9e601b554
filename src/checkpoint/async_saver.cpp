#include "checkpoint/async_saver.hpp"

#include <cstdio>

#include "storage/hdf5_lock.hpp"

namespace cairn::detail {

AsyncSaver::~AsyncSaver() {
  if (!thread_.joinable()) return;
  thread_.join();
  if (!error_) return;
  try {
    std::rethrow_exception(error_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cairn: the asynchronous save of '%s' failed and nobody waited for it: %s\n",
                 prepared_.path.c_str(), e.what());
  } catch (...) {
    std::fprintf(stderr, "cairn: the asynchronous save of '%s' failed\n", prepared_.path.c_str());
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
  error_ = nullptr;
  background_save_started();
  thread_ = std::thread([this, &comm, after_commit = std::move(after_commit),
                         after_save = std::move(after_save)] {
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
