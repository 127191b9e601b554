// SPDX-License-Identifier: Apache-2.0
#include "cairn/manager/manager.hpp"

#include <chrono>
#include <filesystem>

#include "comm/wire.hpp"
#include "core/log.hpp"
#include "manager/directory_recovery.hpp"
#include "storage/state_file.hpp"

namespace cairn {
namespace {

namespace fs = std::filesystem;

int64_t system_clock_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void log_to(const Checkpoint& checkpoint, LogLevel level, const std::string& line) {
  const Session& session = checkpoint.session();
  detail::log_line(session.options().log, session.rank(), level, line);
}

}  // namespace

struct CheckpointManager::State {
  detail::DirectoryState directory;
};

CheckpointManager::CheckpointManager(Checkpoint& checkpoint, std::string directory,
                                     ManagerOptions options)
    : checkpoint_(&checkpoint),
      directory_(std::move(directory)),
      options_(std::move(options)),
      state_(std::make_shared<State>()) {
  const Comm& comm = checkpoint_->session().comm();
  const ErrorContext ctx{
      .rank = comm.rank(), .checkpoint = directory_, .operation = "CheckpointManager"};
  if (!options_.clock) options_.clock = system_clock_unix;
  // {"state": the directory state file's text, "notes": [{"level": int, "text": str}, ...]}
  wire::Message recovered;
  comm.run_agreed([&] {
    if (options_.max_to_keep && *options_.max_to_keep <= 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "max_to_keep must be positive (or unset to keep every checkpoint), got " +
                      std::to_string(*options_.max_to_keep),
                  ctx);
    if (options_.checkpoint_interval && !options_.step_counter)
      throw Error(ErrorCode::kInvalidArgument, "checkpoint_interval needs a step_counter", ctx);
    if (options_.checkpoint_interval && *options_.checkpoint_interval < 0)
      throw Error(ErrorCode::kInvalidArgument, "checkpoint_interval must not be negative", ctx);
    if (options_.keep_checkpoint_every_n_hours && *options_.keep_checkpoint_every_n_hours <= 0)
      throw Error(ErrorCode::kInvalidArgument, "keep_checkpoint_every_n_hours must be positive",
                  ctx);
    if (options_.checkpoint_name.empty() || options_.checkpoint_name.find('/') != std::string::npos)
      throw Error(ErrorCode::kInvalidArgument,
                  "checkpoint_name must be a non-empty file name prefix without '/'", ctx);
    if (comm.rank() != 0) return;
    std::vector<detail::RecoveryNote> notes;
    const detail::DirectoryState state = detail::recover_directory(
        directory_, options_.checkpoint_name, owner(), options_.clock(), notes);
    recovered = {{"state", detail::encode_state(state)}, {"notes", wire::Message::array()}};
    for (const detail::RecoveryNote& n : notes)
      recovered["notes"].push_back({{"level", static_cast<int>(n.level)}, {"text", n.text}});
  });
  wire::broadcast(comm, recovered, 0);
  state_->directory = detail::decode_state(recovered.at("state").get<std::string>(),
                                           detail::state_file_path(directory_));
  for (const wire::Message& n : recovered.at("notes")) {
    notes_.push_back(n.at("text").get<std::string>());
    log_to(*checkpoint_, static_cast<LogLevel>(n.at("level").get<int>()),
           directory_ + ": " + notes_.back());
  }
}

std::string CheckpointManager::owner() const {
  return "manager:" + options_.checkpoint_name;
}

std::string CheckpointManager::path_of(const std::string& name) const {
  return (fs::path(directory_) / name).string();
}

std::vector<std::string> CheckpointManager::checkpoints() {
  wait();
  std::vector<std::string> out;
  for (const detail::StateEntry& e : state_->directory.checkpoints)
    if (e.owner == owner() && !e.preserved) out.push_back(path_of(e.name));
  return out;
}

std::optional<std::string> CheckpointManager::latest_checkpoint() {
  wait();
  if (state_->directory.latest.empty()) return std::nullopt;
  return path_of(state_->directory.latest);
}

// Rank 0, after the new checkpoint is recorded: retires this manager's oldest checkpoints beyond
// max_to_keep, preserving one per keep_checkpoint_every_n_hours. Other owners' files are untouched.
void CheckpointManager::sweep(detail::DirectoryState& st, std::vector<std::string>& deleted) {
  if (!options_.max_to_keep) return;
  std::vector<std::size_t> managed;
  for (std::size_t i = 0; i < st.checkpoints.size(); ++i)
    if (st.checkpoints[i].owner == owner() && !st.checkpoints[i].preserved) managed.push_back(i);
  const auto keep = static_cast<std::size_t>(*options_.max_to_keep);
  if (managed.size() <= keep) return;
  std::vector<std::size_t> retire(managed.begin(),
                                  managed.end() - static_cast<std::ptrdiff_t>(keep));
  std::vector<std::string> to_delete;
  int64_t& last_preserved = st.last_preserved_unix[owner()];
  for (std::size_t i : retire) {
    detail::StateEntry& e = st.checkpoints[i];
    if (options_.keep_checkpoint_every_n_hours &&
        static_cast<double>(e.created_unix - last_preserved) >=
            *options_.keep_checkpoint_every_n_hours * 3600.0) {
      e.preserved = true;
      last_preserved = e.created_unix;
      log_to(*checkpoint_, LogLevel::kDebug,
             "preserved '" + path_of(e.name) + "' (keep_checkpoint_every_n_hours)");
    } else {
      to_delete.push_back(e.name);
    }
  }
  // The state file stops naming a checkpoint before its file goes: a crash in between leaves an
  // orphan file, never a state file pointing at nothing.
  std::erase_if(st.checkpoints, [&](const detail::StateEntry& e) {
    return std::find(to_delete.begin(), to_delete.end(), e.name) != to_delete.end();
  });
  detail::write_state_file(directory_, st);
  for (const std::string& name : to_delete) {
    std::error_code ec;
    fs::remove(path_of(name), ec);
    if (ec) {
      log_to(*checkpoint_, LogLevel::kWarning,
             "could not delete old checkpoint '" + path_of(name) + "': " + ec.message());
    } else {
      deleted.push_back(name);
      log_to(*checkpoint_, LogLevel::kInfo,
             "deleted '" + path_of(name) + "' (max_to_keep " +
                 std::to_string(*options_.max_to_keep) + ")");
    }
  }
}

std::optional<std::string> CheckpointManager::save(std::optional<int64_t> checkpoint_number,
                                                   bool check_interval) {
  return save_impl(checkpoint_number, check_interval, /*async=*/false);
}

std::optional<std::string> CheckpointManager::save_async(std::optional<int64_t> checkpoint_number,
                                                         bool check_interval) {
  return save_impl(checkpoint_number, check_interval, /*async=*/true);
}

void CheckpointManager::wait() {
  try {
    checkpoint_->wait();  // joins the background thread, which produced pending_
  } catch (...) {
    pending_.reset();  // the failed save changed nothing on disk that this view should show
    throw;
  }
  if (pending_) {
    state_->directory = std::move(pending_->directory);
    pending_.reset();
  }
}

std::optional<std::string> CheckpointManager::save_impl(std::optional<int64_t> checkpoint_number,
                                                        bool check_interval, bool async) {
  wait();
  const Comm& comm = checkpoint_->session().comm();
  const std::optional<int64_t> step =
      options_.step_counter ? std::optional<int64_t>(options_.step_counter()) : std::nullopt;
  int64_t skip = 0;
  if (check_interval && options_.checkpoint_interval && step && last_saved_step_)
    skip = *step - *last_saved_step_ < *options_.checkpoint_interval ? 1 : 0;
  // Every rank must take the same branch: if any rank wants to save, all do.
  if (comm.allreduce_min(skip) == 1) {
    log_to(*checkpoint_, LogLevel::kDebug,
           "save skipped at step " + std::to_string(*step) + ": checkpoint_interval " +
               std::to_string(*options_.checkpoint_interval) + " since step " +
               std::to_string(*last_saved_step_));
    return std::nullopt;
  }

  const int64_t number = checkpoint_number.value_or(checkpoint_->save_counter() + 1);
  if (number < 0)
    throw Error(ErrorCode::kInvalidArgument, "checkpoint numbers must not be negative",
                {.rank = comm.rank(), .checkpoint = directory_, .operation = "save"});
  const std::string name = options_.checkpoint_name + "-" + std::to_string(number) + ".h5";
  const std::string path = path_of(name);
  // Rank 0 records the checkpoint and retires old ones once it is committed; then every rank
  // takes rank 0's view. Both steps work on copies until they succeed.
  auto next = std::make_shared<State>(*state_);
  auto after_commit = [this, name, next] {
    detail::DirectoryState& st = next->directory;
    std::erase_if(st.checkpoints, [&](const detail::StateEntry& e) { return e.name == name; });
    st.checkpoints.push_back({name, options_.clock(), owner(), false});
    st.latest = name;
    detail::write_state_file(directory_, st);
    std::vector<std::string> deleted;
    sweep(st, deleted);
  };
  auto share = [this, next](const Comm& c) {
    wire::Message text;
    if (c.rank() == 0) text = detail::encode_state(next->directory);
    wire::broadcast(c, text, 0);
    next->directory =
        detail::decode_state(text.get<std::string>(), detail::state_file_path(directory_));
  };
  if (async) {
    pending_ = next;
    checkpoint_->save_async_to(path, checkpoint_->save_counter() + 1, after_commit, share);
  } else {
    checkpoint_->save_to(path, after_commit);
    share(comm);
    state_->directory = std::move(next->directory);
  }
  if (step) last_saved_step_ = step;
  return path;
}

RestoreOutcome CheckpointManager::restore_or_initialize(const std::function<void()>& init) {
  wait();
  RestoreOutcome outcome;
  const auto& entries = state_->directory.checkpoints;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    // Its own checkpoints and plain saves; another manager's are that manager's business.
    if (it->owner != owner() && it->owner != detail::kPlainSaveOwner) continue;
    const std::string path = path_of(it->name);
    try {
      outcome.status.emplace(checkpoint_->restore(path));
      outcome.path = path;
      break;
    } catch (const Error& e) {
      // Damage falls back to an older checkpoint; a program that no longer fits its checkpoint
      // (shapes, dtypes, a newer format) must not silently resume from an older one.
      if (e.code() != ErrorCode::kCorrupt && e.code() != ErrorCode::kNotFound &&
          e.code() != ErrorCode::kIo)
        throw;
      outcome.skipped.push_back({path, e.what()});
      log_to(*checkpoint_, LogLevel::kWarning, "skipped checkpoint '" + path + "': " + e.what());
    }
  }
  if (!outcome.path && !outcome.skipped.empty()) {
    std::string reasons;
    for (const SkippedCheckpoint& s : outcome.skipped)
      reasons += "\n  - " + s.path + ": " + s.reason;
    throw Error(ErrorCode::kCorrupt,
                "none of the " + std::to_string(outcome.skipped.size()) + " checkpoints in '" +
                    directory_ + "' can be restored; refusing to start from scratch:" + reasons);
  }
  if (outcome.path) {
    log_to(*checkpoint_, LogLevel::kInfo,
           "restore_or_initialize: resumed from '" + *outcome.path + "'" +
               (outcome.skipped.empty() ? std::string(" (the latest checkpoint)")
                                        : " (the newest checkpoint that restores, after skipping " +
                                              std::to_string(outcome.skipped.size()) + ")"));
    if (options_.step_counter) last_saved_step_ = options_.step_counter();
    return outcome;
  }
  log_to(*checkpoint_, LogLevel::kInfo,
         "restore_or_initialize: no checkpoint in '" + directory_ + "'; initialized" +
             (init ? " (the init callback ran)" : " (the initial values stay)"));
  if (init) init();
  return outcome;
}

}  // namespace cairn
