// SPDX-License-Identifier: Apache-2.0
// CheckpointManager's multi-level saves and restores: a node-local part per node (level 1),
// redundancy across nodes (level 2), a background drain to the manager's directory (level 3).
#include <chrono>
#include <utility>

#include "comm/wire.hpp"
#include "manager/background_removal.hpp"
#include "manager/manager_state.hpp"
#include "storage/tier.hpp"

namespace cairn {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const char* redundancy_level(Redundancy scheme) {
  switch (scheme) {
    case Redundancy::kPartner:
      return "partner copy";
    case Redundancy::kXor:
      return "xor parity";
    case Redundancy::kNone:
      break;
  }
  return "node-local";
}

using detail::manager_log;

}  // namespace

void CheckpointManager::log_retired(detail::RemovalOutcome outcome) noexcept {
  if (!outcome.deleted.empty()) last_retire_seconds_ = outcome.seconds;
  try {
    for (const std::string& failure : outcome.failures)
      manager_log(*checkpoint_, LogLevel::kWarning, failure);
    for (const std::string& line : outcome.deleted)
      manager_log(*checkpoint_, LogLevel::kDebug, line);
  } catch (...) {
    // A line that cannot be written (no memory) must not fail a save that succeeded on every rank.
  }
}

// Rank 0 records `name` as a node-local checkpoint and retires node-local copies beyond
// keep_node_local; every rank then takes rank 0's view and deletes its node's retired parts.
void CheckpointManager::record_node_local(const std::string& name) {
  const Comm& comm = checkpoint_->session().comm();
  auto next = std::make_shared<State>(*state_);
  comm.run_agreed([&] {
    if (comm.rank() != 0) return;
    detail::DirectoryState& st = next->directory;
    // A number saved again keeps what its entry says of the shared file (still there until a
    // drain replaces it) and of preservation.
    bool shared = false, preserved = false;
    for (const detail::StateEntry& e : st.checkpoints)
      if (e.name == name) shared = e.shared, preserved = e.preserved;
    std::erase_if(st.checkpoints, [&](const detail::StateEntry& e) { return e.name == name; });
    detail::StateEntry entry{name, options_.clock(), owner(), preserved};
    entry.shared = shared;
    entry.node_local_ranks = comm.size();
    entry.node_local_nodes = node_local_->part()->count;
    st.checkpoints.push_back(entry);
    int kept = 0;
    for (auto it = st.checkpoints.rbegin(); it != st.checkpoints.rend(); ++it)
      if (it->owner == owner() && it->node_local() && ++kept > options_.levels.keep_node_local)
        it->node_local_ranks = it->node_local_nodes = 0;
    std::erase_if(st.checkpoints,
                  [](const detail::StateEntry& e) { return !e.shared && !e.node_local(); });
    detail::write_state_file(directory_, st);
  });
  detail::take_rank0_state(comm, next->directory, directory_);
  // The state file stops naming a node-local copy before its files go (as in sweep()); they go
  // in the background (see BackgroundRemoval), after the save returns. This rank's view follows
  // rank 0's state file first: the save succeeded on every rank, so nothing below may fail on
  // this rank alone. Files left undeleted are the next manager's recovery's to delete.
  const std::shared_ptr<State> before = std::exchange(state_, next);
  try {
    std::vector<std::string> retired;
    for (const detail::StateEntry& old : before->directory.checkpoints) {
      if (!old.node_local()) continue;
      bool still = false;
      for (const detail::StateEntry& e : next->directory.checkpoints)
        still |= e.name == old.name && e.node_local();
      if (!still) retired.push_back(old.name);
    }
    if (retired.empty()) return;
    detail::StorageTier* tier = node_local_.get();
    const int keep = options_.levels.keep_node_local;
    // Nothing is in flight here (the save waited first); a batch that was would be handed out,
    // with this one's, by the next wait().
    retiring_->start([tier, keep, retired] {
      detail::BackgroundRemoval::Outcome outcome;
      for (const std::string& file : retired) {
        for (std::string& failure : tier->remove(file))
          outcome.failures.push_back(std::move(failure));
        outcome.deleted.push_back("deleted the node-local copy of '" + file +
                                  "' (keep_node_local " + std::to_string(keep) + ")");
      }
      return outcome;
    });
  } catch (...) {
    // Out of memory for the list or the job: the retired copies stay until the next recovery.
  }
}

std::string CheckpointManager::save_levels(const std::string& name, bool drain) {
  const auto started = std::chrono::steady_clock::now();
  try {
    // A part save that fails at its commit (agreed after some nodes renamed theirs) can leave
    // committed parts behind, as a failed protect() can: both go the same way.
    checkpoint_->save_part_to(node_local_->path_of(name), *node_local_->part(), nullptr);
    node_local_->protect(name);
  } catch (const Error&) {
    // protect() removed the redundancy files (the error is the same on every rank): the parts
    // go too, so that no committed part of a checkpoint the state file never records is left to
    // look valid, or to keep a full disk full until the next job's recovery.
    for (const std::string& failure : node_local_->remove(name))
      manager_log(*checkpoint_, LogLevel::kWarning, failure);
    throw;
  }
  record_node_local(name);
  last_node_local_seconds_ = seconds_since(started);
  last_drain_blocked_seconds_ = 0;
  if (!drain) return node_local_->path_of(name);

  // The drain: the same values, written to the shared directory by a background thread. The
  // checkpoint becomes the directory's latest only once that file is committed there.
  auto next = std::make_shared<State>(*state_);
  auto after_commit = [this, name, next] {
    detail::DirectoryState& st = next->directory;
    for (detail::StateEntry& e : st.checkpoints)
      if (e.name == name) e.shared = true;
    st.latest = name;
    detail::write_state_file(directory_, st);
    std::vector<std::string> deleted;
    sweep(st, deleted);
  };
  auto share = [this, next](const Comm& c) {
    detail::take_rank0_state(c, next->directory, directory_);
  };
  const auto drain_started = std::chrono::steady_clock::now();
  pending_ = next;
  checkpoint_->save_async_to(path_of(name), checkpoint_->save_counter(), after_commit, share);
  last_drain_blocked_seconds_ = seconds_since(drain_started);
  return path_of(name);
}

bool CheckpointManager::restore_node_local(const std::string& name, RestoreOutcome& outcome) {
  const std::string path = node_local_->path_of(name);
  try {
    const detail::TierAvailability available = node_local_->make_available(name);
    if (!available.complete) {
      outcome.skipped.push_back({path, "node-local copy: " + available.reason});
      manager_log(*checkpoint_, LogLevel::kWarning,
                  "node-local copy of '" + name + "' cannot be used: " + available.reason);
      return false;
    }
    const int me = node_local_->part()->index;
    bool mine_rebuilt = false;
    for (int n : available.rebuilt_nodes) mine_rebuilt |= n == me;
    const std::string level =
        mine_rebuilt ? redundancy_level(options_.levels.redundancy) : "node-local";
    outcome.status.emplace(checkpoint_->restore_part(path, *node_local_->part()->file, level));
    outcome.path = path;
    outcome.level = level;
    outcome.rebuilt_nodes = available.rebuilt_nodes;
    if (!available.rebuilt_nodes.empty()) {
      std::string nodes;
      for (int n : available.rebuilt_nodes)
        nodes += (nodes.empty() ? "" : ", ") + std::to_string(n);
      manager_log(*checkpoint_, LogLevel::kInfo,
                  "rebuilt the node-local copy of '" + name + "' on node(s) " + nodes +
                      " from the " + redundancy_level(options_.levels.redundancy));
    }
    return true;
  } catch (const Error& e) {
    // A part that another grouping of ranks cannot read (kShardMismatch) is no reason to stop:
    // the shared file restores at any geometry.
    if (e.code() != ErrorCode::kCorrupt && e.code() != ErrorCode::kNotFound &&
        e.code() != ErrorCode::kIo && e.code() != ErrorCode::kShardMismatch)
      throw;
    outcome.skipped.push_back({path, e.what()});
    manager_log(*checkpoint_, LogLevel::kWarning,
                "skipped the node-local copy of '" + name + "': " + e.what());
    return false;
  }
}

}  // namespace cairn
