// SPDX-License-Identifier: Apache-2.0
#include "cairn/checkpoint/checkpoint.hpp"

#include <algorithm>
#include <chrono>
#include <string_view>

#include "checkpoint/async_saver.hpp"
#include "checkpoint/plan_cache.hpp"
#include "checkpoint/restore.hpp"
#include "checkpoint/save.hpp"
#include "comm/wire.hpp"
#include "core/log.hpp"
#include "core/trace.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/schema.hpp"
#include "storage/state_file.hpp"

namespace cairn {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Checkpoint::Checkpoint(const Session& session, Children children)
    : session_(&session),
      root_(std::make_shared<Module>()),
      plan_cache_(std::make_unique<detail::PlanCache>()) {
  for (auto& [name, child] : children) root_->track(name, std::move(child));
}

Checkpoint::~Checkpoint() = default;  // ~AsyncSaver joins and reports an unobserved failure
Checkpoint::Checkpoint(Checkpoint&& other) noexcept = default;

void Checkpoint::wait() {
  if (!async_ || !async_->pending()) return;
  try {
    const detail::SaveStats stats = async_->wait();
    last_save_ = {async_->path(), stats.bytes, stats.seconds, stats.plan_reused,
                  stats.metadata_bytes_written};
    plan_cache_->keep(async_->release_prepared());
  } catch (...) {
    save_counter_ = counter_before_async_;
    plan_cache_->clear();
    throw;
  }
}

bool Checkpoint::save_in_flight() const noexcept {
  return async_ && async_->pending();
}

int64_t Checkpoint::async_staging_bytes() const noexcept {
  return async_ ? async_->staging_capacity() : 0;
}

std::string Checkpoint::save_async_to(const std::string& path, int64_t counter,
                                      const std::function<void()>& after_commit,
                                      const std::function<void(const Comm&)>& after_save) {
  wait();
  if (session_->thread_level() < MPI_THREAD_MULTIPLE) {
    static bool told = false;
    if (!told)
      detail::log_line(session_->options().log, session_->rank(), LogLevel::kWarning,
                       "MPI was not initialized with MPI_THREAD_MULTIPLE; asynchronous saves run "
                       "synchronously");
    told = true;
    const detail::SaveStats stats =
        detail::save_container(*session_, root_, path, counter, after_commit, plan_cache_.get());
    if (after_save) after_save(session_->comm());
    last_save_ = {path, stats.bytes, stats.seconds, stats.plan_reused,
                  stats.metadata_bytes_written};
    save_counter_ = counter;
    return path;
  }
  const auto start = std::chrono::steady_clock::now();
  // What the caller waits for, phase by phase (prepare_save traces its own phases in between),
  // from where last_async_blocked_seconds() starts: after this checkpoint's own previous save.
  detail::PhaseTrace trace("save (caller blocked)", session_->rank(), path);
  detail::wait_for_background_saves();  // another Checkpoint's save must not overlap this one
  trace.mark("wait for other checkpoints' saves");
  detail::PreparedSave prepared =
      detail::prepare_save(*session_, root_, path, counter, plan_cache_.get());
  trace.mark("prepare");
  if (!async_) async_ = std::make_unique<detail::AsyncSaver>();
  const int64_t staged = detail::staging_bytes_needed(prepared.plan);
  detail::stage_plan(prepared.plan, async_->staging(staged));
  trace.mark("stage a copy", staged);
  counter_before_async_ = save_counter_;
  save_counter_ = counter;
  async_->start(session_->background_comm(), std::move(prepared), after_commit, after_save);
  trace.mark("start the background save");
  last_async_blocked_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return path;
}

std::string Checkpoint::save_async(const std::string& prefix) {
  wait();
  const int64_t counter = save_counter_ + 1;
  const std::string path = prefix + "-" + std::to_string(counter) + ".h5";
  return save_async_to(
      path, counter, [path] { detail::record_latest(path, detail::kPlainSaveOwner, unix_now()); },
      nullptr);
}

std::string Checkpoint::write_async(const std::string& path) {
  wait();
  return save_async_to(path, save_counter_, nullptr, nullptr);
}

std::string Checkpoint::save(const std::string& prefix) {
  wait();
  const int64_t counter = save_counter_ + 1;
  const std::string path = prefix + "-" + std::to_string(counter) + ".h5";
  const detail::SaveStats stats = detail::save_container(
      *session_, root_, path, counter,
      [&] { detail::record_latest(path, detail::kPlainSaveOwner, unix_now()); }, plan_cache_.get());
  last_save_ = {path, stats.bytes, stats.seconds, stats.plan_reused, stats.metadata_bytes_written};
  save_counter_ = counter;
  return path;
}

std::string Checkpoint::save_to(const std::string& path,
                                const std::function<void()>& after_commit) {
  wait();
  const detail::SaveStats stats = detail::save_container(*session_, root_, path, save_counter_ + 1,
                                                         after_commit, plan_cache_.get());
  last_save_ = {path, stats.bytes, stats.seconds, stats.plan_reused, stats.metadata_bytes_written};
  ++save_counter_;
  return path;
}

std::string Checkpoint::write(const std::string& path) {
  wait();
  const detail::SaveStats stats =
      detail::save_container(*session_, root_, path, save_counter_, nullptr, plan_cache_.get());
  last_save_ = {path, stats.bytes, stats.seconds, stats.plan_reused, stats.metadata_bytes_written};
  return path;
}

std::string Checkpoint::save_part_to(const std::string& path, const detail::PartTarget& part,
                                     const std::function<void()>& after_commit) {
  wait();
  detail::wait_for_background_saves();
  // The node's ranks write the replicated tensors and global state of its file between them.
  detail::WriterGroup group{0, static_cast<int>(part.writers.size()), part.writers};
  const auto mine = std::find(part.writers.begin(), part.writers.end(), session_->rank());
  group.rank = static_cast<int>(mine - part.writers.begin());
  // Not from the plan cache: its plan divides the replicated tensors among the whole job.
  detail::PreparedSave prepared =
      detail::prepare_save(*session_, root_, path, save_counter_ + 1, nullptr, &group);
  const detail::SaveStats stats =
      detail::commit_save(session_->comm(), prepared, after_commit, &part);
  last_save_ = {path, stats.bytes, stats.seconds, stats.plan_reused, stats.metadata_bytes_written};
  ++save_counter_;
  return path;
}

RestoreStatus Checkpoint::restore_part(const std::string& path, const Comm& node,
                                       const std::string& level) {
  return load(path, true, &node, level);
}

RestoreStatus Checkpoint::load(const std::string& path, bool restore_counter, const Comm* node,
                               const std::string& level) {
  wait();
  detail::RestoreStats stats;
  auto context = detail::restore_container(*session_, root_, path, &stats, node, level);
  last_restore_ = {path,
                   stats.bytes,
                   stats.seconds,
                   stats.metadata_bytes_read,
                   stats.bytes_read_from_file,
                   stats.bytes_received_from_peers,
                   stats.node_ranks};
  if (restore_counter) save_counter_ = context->manifest().save_counter;
  return RestoreStatus(std::move(context));
}

RestoreStatus Checkpoint::read(const std::string& path) {
  return load(path, false);
}
RestoreStatus Checkpoint::restore(const std::string& path) {
  return load(path, true);
}

static_assert(std::string_view(kStateFileName) == detail::schema::kStateFileName,
              "the public name of the state file is storage's");

std::optional<std::string> latest_checkpoint(const std::string& directory) {
  return detail::latest_recorded_checkpoint(directory);
}

std::optional<std::string> latest_checkpoint(const Session& session, const std::string& directory) {
  const Comm& comm = session.comm();
  wire::Message found;  // null: no checkpoint
  comm.run_agreed([&] {
    if (comm.rank() != 0) return;
    if (auto latest = latest_checkpoint(directory)) found = *latest;
  });
  wire::broadcast(comm, found, 0);
  if (found.is_null()) return std::nullopt;
  return found.get<std::string>();
}

}  // namespace cairn
