// SPDX-License-Identifier: Apache-2.0
#pragma once
// CheckpointManager: tf.train.CheckpointManager for MPI jobs. Retention, save intervals,
// restore_or_initialize with fallback to the newest checkpoint that restores, recovery of the
// directory after crashes, and deletion of only the checkpoints it owns.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/manager/levels.hpp"

namespace cairn {

namespace detail {
struct DirectoryState;
class StorageTier;
class BackgroundRemoval;
struct RemovalOutcome;
}  // namespace detail

struct ManagerOptions {
  /// How many of this manager's checkpoints to keep; nullopt keeps all. Zero or negative is
  /// rejected.
  std::optional<int> max_to_keep = 5;
  /// Additionally keep one checkpoint per this many hours for good (never deleted).
  std::optional<double> keep_checkpoint_every_n_hours;
  /// File names are "<checkpoint_name>-<number>.h5".
  std::string checkpoint_name = "ckpt";
  /// With step_counter: save() skips saves until the step advanced this much since the last one.
  std::optional<int64_t> checkpoint_interval;
  /// The training step, read at each save (required with checkpoint_interval).
  std::function<int64_t()> step_counter;
  /// Seconds since the epoch; the system clock by default. Tests substitute their own.
  std::function<int64_t()> clock;
  /// Multi-level checkpointing (off unless node_local_directory is set, here or by
  /// CAIRN_NODE_LOCAL_DIR). The manager's directory is then level 3, the shared file system.
  LevelOptions levels;
};

/// Why a candidate checkpoint was skipped by restore_or_initialize().
struct SkippedCheckpoint {
  std::string path;
  std::string reason;
};

struct RestoreOutcome {
  std::optional<std::string> path;         // what was restored; nullopt: initialized instead
  std::optional<RestoreStatus> status;     // the restore's status when something was restored
  std::vector<SkippedCheckpoint> skipped;  // newer checkpoints that failed, newest first
  /// Where this rank's values came from: "shared file", "node-local", or, for a node whose
  /// node-local files were lost and rebuilt, "partner copy" or "xor parity". Empty if initialized.
  std::string level;
  /// Nodes whose node-local files were rebuilt from redundancy (the same on every rank).
  std::vector<int> rebuilt_nodes;
};

class CheckpointManager {
 public:
  /// Collective over the checkpoint's session. Reads the directory's state file (rank 0) and
  /// recovers it: entries whose files are gone are dropped, committed files of this manager's
  /// naming newer than the state file knows (a crash between commit and state update) are adopted,
  /// temporary files of crashed saves of this manager's naming are deleted. What was done is in
  /// recovery_notes() and printed once by rank 0. A damaged state file is an error on every rank.
  CheckpointManager(Checkpoint& checkpoint, std::string directory, ManagerOptions options = {});
  /// Waits for a save or drain in flight, which calls back into the manager; its failure is
  /// logged (a destructor cannot throw).
  ~CheckpointManager();
  CheckpointManager(CheckpointManager&&) noexcept;

  /// Collective. Saves "<name>-<number>.h5" (number: `checkpoint_number`, else the incremented
  /// save_counter), records it as the latest, then deletes this manager's checkpoints beyond
  /// max_to_keep (except preserved ones). Returns nullopt when `check_interval` is true and the
  /// step counter has not advanced by checkpoint_interval since the last save.
  std::optional<std::string> save(std::optional<int64_t> checkpoint_number = std::nullopt,
                                  bool check_interval = true);
  /// Collective. save(), asynchronously (see Checkpoint::save_async): returns once this rank's
  /// values are staged; recording, retention and the state file follow the background commit.
  std::optional<std::string> save_async(std::optional<int64_t> checkpoint_number = std::nullopt,
                                        bool check_interval = true);
  /// Local. Waits for this manager's save in flight; throws its error (the same on every rank).
  /// With levels, also waits for the deletion of retired node-local copies, which runs in the
  /// background after a save returns (every save, restore and listing waits for it first).
  void wait();

  /// Collective. Restores the newest checkpoint in the directory that restores cleanly; a
  /// checkpoint that is missing, truncated, uncommitted or fails its checksums is skipped (and
  /// reported) in favour of the next newest. With no checkpoint at all, runs `init` instead.
  /// Throws if checkpoints exist but none can be restored.
  RestoreOutcome restore_or_initialize(const std::function<void()>& init = nullptr);

  /// Local (waits for a save in flight; with levels, a failed drain is logged, not thrown, as by
  /// the next save). Paths of this manager's checkpoints that retention may still delete, oldest
  /// first.
  std::vector<std::string> checkpoints();
  /// Local (waits for a save in flight, as checkpoints() does). The latest checkpoint of the
  /// directory, or nullopt.
  std::optional<std::string> latest_checkpoint();
  const std::string& directory() const noexcept { return directory_; }
  /// Local. What the constructor found and repaired, one line each.
  const std::vector<std::string>& recovery_notes() const noexcept { return notes_; }
  /// Local. Step of the last save, if the step counter is set and a save happened.
  std::optional<int64_t> last_saved_step() const noexcept { return last_saved_step_; }
  /// Local. The levels in use (after the environment's overrides); node_local_directory is empty
  /// when multi-level checkpointing is off.
  const LevelOptions& levels() const noexcept { return options_.levels; }
  /// Local. Seconds the last save spent in the node-local save and its redundancy (0 without
  /// levels), and the seconds the last save blocked its caller for a drain to the shared file
  /// system (staging the values; 0 when it did not drain).
  double last_node_local_seconds() const noexcept { return last_node_local_seconds_; }
  double last_drain_blocked_seconds() const noexcept { return last_drain_blocked_seconds_; }
  /// Local. Seconds the last finished background deletion of retired node-local copies took on
  /// its helper thread (0 if none has finished; near 0 on ranks that are not the first of their
  /// node, which delete nothing): work a save no longer waits for.
  double last_retire_seconds() const noexcept { return last_retire_seconds_; }

 private:
  std::optional<std::string> save_impl(std::optional<int64_t> checkpoint_number,
                                       bool check_interval, bool async);
  std::string save_levels(const std::string& name, bool drain);
  bool restore_node_local(const std::string& name, RestoreOutcome& outcome);
  void record_node_local(const std::string& name);
  /// Logs a finished batch of background deletions (failures as warnings).
  void log_retired(detail::RemovalOutcome outcome) noexcept;
  /// wait(), except that with levels a failed drain is logged, not thrown: its checkpoint stays
  /// node-local.
  void settle_drain();
  std::string owner() const;
  std::string path_of(const std::string& name) const;
  void sweep(detail::DirectoryState& state, std::vector<std::string>& deleted_names);

  Checkpoint* checkpoint_;
  std::string directory_;
  ManagerOptions options_;
  std::vector<std::string> notes_;
  std::optional<int64_t> last_saved_step_;
  struct State;
  std::shared_ptr<State> state_;    // the directory state as every rank sees it
  std::shared_ptr<State> pending_;  // filled by a background save; taken over by wait()
  std::unique_ptr<detail::StorageTier> node_local_;  // level 1 (+2); null without levels
  // Deletes retired node-local copies after a save returns; declared after node_local_, so
  // destroyed (joined) before the tier its deletions use.
  std::unique_ptr<detail::BackgroundRemoval> retiring_;
  double last_node_local_seconds_ = 0;
  double last_retire_seconds_ = 0;
  double last_drain_blocked_seconds_ = 0;
};

}  // namespace cairn
