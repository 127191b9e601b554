// SPDX-License-Identifier: Apache-2.0
#pragma once
// tf.train.Checkpoint for MPI jobs: one HDF5 container per checkpoint, written by every rank in
// parallel, restorable on any number of ranks with any layout.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/checkpoint/status.hpp"
#include "cairn/comm/session.hpp"
#include "cairn/graph/trackable.hpp"

namespace cairn {

namespace detail {
class AsyncSaver;
class PlanCache;
struct PartTarget;
}  // namespace detail

/// What one save or write did, for progress lines.
struct SaveInfo {
  std::string path;
  int64_t bytes = 0;         // tensor and state bytes written by all ranks together
  double seconds = 0;        // from the call to the durable commit
  bool plan_reused = false;  // the graph was unchanged: the previous save's plan was reused
  // Bytes of cairn's metadata this rank wrote into the file (format 2.0: its record and its
  // entries of the record and packed-region indexes; rank 0 also the header, the table and the
  // commit mark; HDF5's own structures not counted).
  int64_t metadata_bytes_written = 0;
};

/// What one restore or read did.
struct RestoreInfo {
  std::string path;
  int64_t bytes = 0;   // tensor bytes restored into the job's variables, all ranks together
  double seconds = 0;  // from the call to the end of the collective restore
  // Bytes of cairn's metadata this rank took in: the commit mark, the header and the table (rank 0
  // reads them from the file, every other rank receives them from rank 0), the records it read
  // (format 2.0: those of the writers whose pieces it restored) with their index entries, and its
  // entries of the packed-region index.
  int64_t metadata_bytes_read = 0;
  // This rank's bytes of saved pieces and state values (not metadata, nor gaps read through
  // between packed values; deferred restores of objects attached later are not counted): read
  // from the file by this rank, and received from the other ranks of its node
  // (ReplicatedReads::kOncePerNode; always 0 with kEveryRank).
  int64_t bytes_read_from_file = 0;
  int64_t bytes_received_from_peers = 0;
  // Ranks of this rank's node that shared their reads (1 with ReplicatedReads::kEveryRank).
  int node_ranks = 1;
};

class Checkpoint {
 public:
  using Children = std::vector<std::pair<std::string, std::shared_ptr<Trackable>>>;

  /// Local. The checkpoint's root object gets `children` as named dependencies.
  Checkpoint(const Session& session, Children children = {});
  /// Waits for a save still in flight; reports (on stderr) a background failure nobody observed.
  /// Call wait() before MPI_Finalize: a background save needs MPI.
  ~Checkpoint();
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) = delete;

  /// Local. The root of the object graph (add more dependencies with root().track()).
  Module& root() noexcept { return *root_; }
  const Session& session() const noexcept { return *session_; }

  /// Collective over the session. Increments save_counter, writes "<prefix>-<counter>.h5" and
  /// records it as the latest checkpoint in the directory's state file. Returns the path.
  std::string save(const std::string& prefix);
  /// Collective over the session. Writes exactly `path`; neither the counter nor the state file
  /// change. Returns `path`.
  std::string write(const std::string& path);
  /// Collective over the session. save(), asynchronously: returns once this rank's values are
  /// copied into staging memory (reused between saves; as large as the rank's share of the
  /// checkpoint), while a background thread writes and commits with the same protocol, on the
  /// session's background communicator. At most one save is in flight: the next save, write,
  /// read or restore waits for it first. Needs MPI_THREAD_MULTIPLE; with less, it saves
  /// synchronously and says so once. The counter advances now and rolls back if the save fails.
  std::string save_async(const std::string& prefix);
  /// Collective over the session. write(), asynchronously.
  std::string write_async(const std::string& path);
  /// Local. Waits for the save in flight, if any; throws its error, which is the same on every
  /// rank (the background save agrees on its outcome), and the checkpoint never became latest.
  void wait();
  /// Local. Whether a background save is still running or unobserved.
  bool save_in_flight() const noexcept;
  /// Local. Seconds the last save_async() blocked its caller (planning and staging copy).
  double last_async_blocked_seconds() const noexcept { return last_async_blocked_; }
  /// Local. Bytes of staging memory this object keeps for asynchronous saves (0 before the first).
  int64_t async_staging_bytes() const noexcept;

  /// Collective over the session. Restores values, but not save_counter.
  RestoreStatus read(const std::string& path);
  /// Collective over the session. Restores values and save_counter.
  RestoreStatus restore(const std::string& path);

  /// Local. Number of save() calls, including those of the checkpoint last restored.
  int64_t save_counter() const noexcept { return save_counter_; }
  /// Local. The last successful save() or write() of this object.
  const SaveInfo& last_save() const noexcept { return last_save_; }
  /// Local. The last successful restore() or read() of this object.
  const RestoreInfo& last_restore() const noexcept { return last_restore_; }

 private:
  friend class CheckpointManager;
  /// Collective. Like save(), but to `path`; `after_commit` runs on rank 0 once the file is in
  /// place, instead of the state-file update save() does.
  std::string save_to(const std::string& path, const std::function<void()>& after_commit);
  /// Collective. save_to(), asynchronously; `after_save` runs on every rank in the background
  /// thread once the save succeeded, with the background communicator.
  std::string save_async_to(const std::string& path, int64_t counter,
                            const std::function<void()>& after_commit,
                            const std::function<void(const Comm&)>& after_save);
  /// Collective. save_to() of this node's part of a node-local checkpoint: every node writes its
  /// own file at `path` (each node passes its own), `after_commit` runs on rank 0 once all are
  /// committed.
  std::string save_part_to(const std::string& path, const detail::PartTarget& part,
                           const std::function<void()>& after_commit);
  /// Collective. restore() from this node's part (`node`: the ranks of this rank's node); `level`
  /// names where the part came from, for the log line.
  RestoreStatus restore_part(const std::string& path, const Comm& node, const std::string& level);
  RestoreStatus load(const std::string& path, bool restore_counter, const Comm* node = nullptr,
                     const std::string& level = "shared file");

  const Session* session_;
  std::shared_ptr<Module> root_;
  int64_t save_counter_ = 0;
  SaveInfo last_save_;
  RestoreInfo last_restore_;
  std::unique_ptr<detail::PlanCache> plan_cache_;  // declared before async_: outlives its saves
  std::unique_ptr<detail::AsyncSaver> async_;
  int64_t counter_before_async_ = 0;
  double last_async_blocked_ = 0;
};

/// The name of the state file kept in a checkpoint directory.
inline constexpr const char* kStateFileName = "cairn-state.json";

/// Local. The latest checkpoint recorded in `directory`'s state file, or nullopt if there is no
/// state file. Throws cairn::Error if the state file is unreadable or names a missing file.
std::optional<std::string> latest_checkpoint(const std::string& directory);
/// Collective over the session. As above, read by rank 0 and broadcast, so all ranks agree.
std::optional<std::string> latest_checkpoint(const Session& session, const std::string& directory);

}  // namespace cairn
