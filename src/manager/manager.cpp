// SPDX-License-Identifier: Apache-2.0
#include "cairn/manager/manager.hpp"

#include <chrono>
#include <filesystem>

#include "comm/wire.hpp"
#include "manager/background_removal.hpp"
#include "manager/directory_recovery.hpp"
#include "manager/manager_state.hpp"
#include "storage/tier.hpp"

namespace cairn {
namespace {

namespace fs = std::filesystem;

int64_t system_clock_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void log_to(const Checkpoint& checkpoint, LogLevel level, const std::string& line) {
  detail::manager_log(checkpoint, level, line);
}

detail::RedundancySpec redundancy_spec(const LevelOptions& levels) {
  detail::RedundancySpec spec;
  spec.scheme = levels.redundancy == Redundancy::kPartner ? detail::Redundancy::kPartner
                : levels.redundancy == Redundancy::kXor   ? detail::Redundancy::kXor
                                                          : detail::Redundancy::kNone;
  spec.xor_group_size = levels.xor_group_size;
  return spec;
}

// What every rank must agree on about the levels (a batch script's environment could differ).
std::string levels_signature(const LevelOptions& l) {
  return l.node_local_directory + '\n' + std::to_string(static_cast<int>(l.redundancy)) + ' ' +
         std::to_string(l.xor_group_size) + ' ' + std::to_string(l.keep_node_local) + ' ' +
         std::to_string(l.shared_every) + ' ' + (l.rank_per_node ? "1" : "0");
}

}  // namespace

CheckpointManager::~CheckpointManager() {
  // A save or drain in flight calls back into this manager (recording, retention, the state
  // every rank takes): it must end before the manager does. A moved-from manager has no state.
  if (!state_) return;
  try {
    settle_drain();
  } catch (const std::exception& e) {
    try {
      log_to(*checkpoint_, LogLevel::kWarning,
             std::string("a save in flight failed and nobody waited for it: ") + e.what());
    } catch (...) {
      // Destructors must not throw: a line that cannot be composed is dropped.
    }
  } catch (...) {
  }
}
CheckpointManager::CheckpointManager(CheckpointManager&&) noexcept = default;

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
    options_.levels = levels_from_environment(options_.levels);
    const LevelOptions& levels = options_.levels;
    if (levels.xor_group_size < 2)
      throw Error(ErrorCode::kInvalidArgument,
                  "xor_group_size must be at least 2, got " + std::to_string(levels.xor_group_size),
                  ctx);
    if (levels.keep_node_local < 1)
      throw Error(
          ErrorCode::kInvalidArgument,
          "keep_node_local must be at least 1, got " + std::to_string(levels.keep_node_local), ctx);
    if (levels.shared_every < 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "shared_every must not be negative, got " + std::to_string(levels.shared_every),
                  ctx);
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
  const LevelOptions& levels = options_.levels;
  {
    const std::string signature = levels_signature(levels);
    const auto hash = static_cast<int64_t>(std::hash<std::string>{}(signature) >> 1);
    std::vector<int64_t> extremes{hash, -hash};
    comm.allreduce_max(extremes);
    if (extremes[0] != -extremes[1])
      throw Error(ErrorCode::kInvalidArgument,
                  "ranks disagree on the multi-level options (LevelOptions or the CAIRN_* "
                  "environment variables); every rank must use the same",
                  {.checkpoint = directory_, .operation = "CheckpointManager"});
  }
  if (levels.node_local_directory.empty()) return;
  node_local_ = detail::make_node_local_tier(comm, levels.node_local_directory,
                                             redundancy_spec(levels), levels.rank_per_node);
  retiring_ = std::make_unique<detail::BackgroundRemoval>();
  std::vector<std::string> recorded;
  for (const detail::StateEntry& e : state_->directory.checkpoints)
    if (e.node_local()) recorded.push_back(e.name);
  for (const std::string& note : node_local_->recover(options_.checkpoint_name, recorded)) {
    notes_.push_back(note);
    detail::log_line(checkpoint_->session().options().log, comm.rank(), LogLevel::kInfo, note);
  }
}

std::string CheckpointManager::owner() const {
  return "manager:" + options_.checkpoint_name;
}

std::string CheckpointManager::path_of(const std::string& name) const {
  return (fs::path(directory_) / name).string();
}

std::vector<std::string> CheckpointManager::checkpoints() {
  settle_drain();
  std::vector<std::string> out;
  for (const detail::StateEntry& e : state_->directory.checkpoints)
    if (e.owner == owner() && !e.preserved)
      out.push_back(e.shared || !node_local_ ? path_of(e.name) : node_local_->path_of(e.name));
  return out;
}

std::optional<std::string> CheckpointManager::latest_checkpoint() {
  settle_drain();
  // With levels, the newest checkpoint at any level: a node-local one is this rank's part.
  if (node_local_) {
    for (auto it = state_->directory.checkpoints.rbegin();
         it != state_->directory.checkpoints.rend(); ++it) {
      if (it->owner != owner()) continue;
      if (it->shared) break;
      return node_local_->path_of(it->name);
    }
  }
  if (state_->directory.latest.empty()) return std::nullopt;
  return path_of(state_->directory.latest);
}

// Rank 0, after the new checkpoint is recorded: retires this manager's oldest checkpoints beyond
// max_to_keep, preserving one per keep_checkpoint_every_n_hours. Other owners' files are untouched.
void CheckpointManager::sweep(detail::DirectoryState& st, std::vector<std::string>& deleted) {
  if (!options_.max_to_keep) return;
  std::vector<std::size_t> managed;
  for (std::size_t i = 0; i < st.checkpoints.size(); ++i)
    if (st.checkpoints[i].owner == owner() && !st.checkpoints[i].preserved &&
        st.checkpoints[i].shared)
      managed.push_back(i);
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
  // orphan file, never a state file pointing at nothing. A checkpoint that still has node-local
  // copies stays recorded at that level.
  std::erase_if(st.checkpoints, [&](detail::StateEntry& e) {
    if (std::find(to_delete.begin(), to_delete.end(), e.name) == to_delete.end()) return false;
    e.shared = false;
    return !e.node_local();
  });
  if (std::find(to_delete.begin(), to_delete.end(), st.latest) != to_delete.end()) {
    st.latest.clear();
    for (const detail::StateEntry& e : st.checkpoints)
      if (e.shared) st.latest = e.name;
  }
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
  if (retiring_) log_retired(retiring_->finish());
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

void CheckpointManager::settle_drain() {
  if (!node_local_) {
    wait();
    return;
  }
  try {
    wait();
  } catch (const Error& e) {
    // The checkpoint it drained keeps its node-local copies; training goes on.
    log_to(*checkpoint_, LogLevel::kWarning,
           std::string("the background copy to the shared directory failed; the checkpoint stays "
                       "node-local only: ") +
               e.what());
  }
}

std::optional<std::string> CheckpointManager::save_impl(std::optional<int64_t> checkpoint_number,
                                                        bool check_interval, bool async) {
  settle_drain();
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
  if (node_local_) {
    const int every = options_.levels.shared_every;
    const std::string saved = save_levels(name, every > 0 && number % every == 0);
    if (step) last_saved_step_ = step;
    return saved;
  }
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
    detail::take_rank0_state(c, next->directory, directory_);
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
  settle_drain();
  RestoreOutcome outcome;
  const Comm& comm = checkpoint_->session().comm();
  const auto& entries = state_->directory.checkpoints;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    // Its own checkpoints and plain saves; another manager's are that manager's business.
    if (it->owner != owner() && it->owner != detail::kPlainSaveOwner) continue;
    // The node-local copy first: at the geometry that saved it, each node reads its own part
    // (rebuilt from redundancy where a node lost it). Otherwise, or if it cannot be had, the
    // shared file.
    if (node_local_ && it->node_local()) {
      if (it->node_local_ranks == comm.size() &&
          it->node_local_nodes == node_local_->part()->count) {
        if (restore_node_local(it->name, outcome)) break;
      } else {
        const std::string why = "the node-local copy of '" + it->name + "' was saved by " +
                                std::to_string(it->node_local_ranks) + " ranks on " +
                                std::to_string(it->node_local_nodes) + " nodes, this job has " +
                                std::to_string(comm.size()) + " ranks on " +
                                std::to_string(node_local_->part()->count) +
                                " nodes: parts restore only at the geometry that saved them";
        log_to(*checkpoint_, LogLevel::kInfo,
               why + (it->shared ? "; the shared file is used" : "; it has no shared copy"));
        // Named, so that a job of another size whose checkpoints are all node-local refuses to
        // start from scratch instead of initializing.
        if (!it->shared) outcome.skipped.push_back({node_local_->path_of(it->name), why});
      }
    }
    const std::string path = path_of(it->name);
    if (!it->shared) {
      if (!node_local_ || !it->node_local())
        outcome.skipped.push_back({path, "no copy of it at any level this job can read"});
      continue;
    }
    try {
      outcome.status.emplace(checkpoint_->restore(path));
      outcome.path = path;
      outcome.level = "shared file";
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
