// SPDX-License-Identifier: Apache-2.0
#pragma once
// One restore: which checkpoint node each live object was matched to, which values were restored,
// and deferred restoration of objects attached later (local reads, never a collective).
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cairn/comm/session.hpp"
#include "cairn/graph/trackable.hpp"
#include "storage/container_reader.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

class NodeShare;

/// One problem a status check reports: its text, and the object path or value key it concerns
/// (raw, for an error's context).
struct AccountItem {
  std::string text;
  std::string key;
};

/// This rank's view of what a restore matched, for the status checks.
struct LocalAccount {
  std::vector<AccountItem> unmatched_checkpoint_objects;
  std::vector<AccountItem> inconsistent_references;
  std::vector<AccountItem> unrestored_values;  // of matched objects
  std::vector<AccountItem> unmatched_live_objects;
  int64_t matched_objects = 0;  // excluding the root
  int64_t restored_values = 0;
};

class RestoreContext : public RestoreHook, public std::enable_shared_from_this<RestoreContext> {
 public:
  /// `mark` identifies the file: deferred restores reopen it and check they found the same one.
  /// `records`: a format 2.x file's table and the records taken in so far (null for 1.x); the
  /// records of the writers whose pieces a restore needs are read when it first needs them.
  RestoreContext(const Session& session, std::string path, Manifest manifest, CommitMark mark,
                 std::shared_ptr<SavedRecords> records, std::shared_ptr<Trackable> root);
  ~RestoreContext() override;

  struct Match {
    int64_t node;
    std::shared_ptr<Trackable> object;
  };
  /// Local. Matches `object` to checkpoint node `node` and, breadth first, everything below it
  /// that has a counterpart (including slot variables whose variable and optimizer both matched).
  std::vector<Match> match(int64_t node, const std::shared_ptr<Trackable>& object);
  /// Local. Checks kinds, dtypes, shapes and job size before anything is read; throws naming the
  /// key.
  void validate(const std::vector<Match>& matches) const;
  /// Local. Reads (through `reader`) the records of the writers of what `matches` restore on this
  /// rank, so that the manifest holds their boxes and blobs. Nothing to do for a 1.x file. A
  /// collective restore runs it in the agreed step of the validation: a damaged record on one rank
  /// must fail the restore before any rank overwrites a live value.
  void load_records(const std::vector<Match>& matches, ContainerReader& reader);
  /// Bytes of pieces and state values one restore_values() call read from the file, and received
  /// from other ranks of the node.
  struct ReadCounts {
    int64_t from_file = 0;
    int64_t from_peers = 0;
  };
  /// Reads and verifies the values of the matches that carry one through `reader`; the records
  /// they need must have been loaded (load_records()). Local without `share`; with it, collective
  /// over the share's node: pieces that several ranks of the node need are read once there and
  /// broadcast (every rank of the node throws the same error).
  ReadCounts restore_values(const std::vector<Match>& matches, ContainerReader& reader,
                            NodeShare* share = nullptr);

  void on_child_attached(Trackable& parent, int64_t parent_node, const std::string& name,
                         const std::shared_ptr<Trackable>& child) override;
  void on_slot_added(Trackable& optimizer, int64_t optimizer_node,
                     const std::shared_ptr<Trackable>& variable, const std::string& slot_name,
                     const std::shared_ptr<Trackable>& slot) override;

  /// Local. Compares the live graph under the root with what was matched.
  LocalAccount account() const;
  const Manifest& manifest() const noexcept { return manifest_; }
  const std::string& path() const noexcept { return path_; }
  /// The session the restore ran in; it must outlive collective status checks.
  const Session& session() const noexcept { return *session_; }
  void set_expect_partial() noexcept { expect_partial_ = true; }
  /// Local. Unbinds every object this restore matched and silences its summary.
  void abandon() noexcept;
  /// Local. Called once the collective restore is done: supersedes the older restores bound to
  /// the same root (see supersede()), then keeps the file readable for deferred restoration while
  /// anything is pending (a descriptor keeps a deleted file's data), or lets go of every object
  /// at once if nothing is.
  void finish_collective_restore() noexcept;
  /// Which restore() call this is: later calls have larger numbers.
  uint64_t generation() const noexcept { return generation_; }

 private:
  /// Format 1.x: which tensor and state each node's value key names.
  void resolve_keys();
  void restore_deferred(const std::vector<Match>& matches);
  void supersede_older_restores();
  /// The newest restore wins: what is still pending here at a path where a newer restore of the
  /// same root holds an object (and a value, if this one holds a value there) is no longer
  /// pending here, so a restore whose rest is never created lets go of its file and manifest.
  /// `provided` maps each path of the newer checkpoint to whether it holds a value there.
  void supersede(const std::unordered_map<std::string_view, bool>& provided);
  std::vector<Match> slot_matches_for_variable(int64_t variable_node,
                                               const std::shared_ptr<Trackable>& variable);
  bool bind(int64_t node, const std::shared_ptr<Trackable>& object);
  void note_conflict(int64_t node, const std::shared_ptr<Trackable>& first,
                     const std::shared_ptr<Trackable>& second);
  void mark_restored(int64_t node, Trackable& object);
  /// With nothing pending, no object attached later can get anything from this restore: its
  /// file is closed and its objects are let go (they no longer keep the manifest in memory).
  void release_if_done() noexcept;
  void close_file() noexcept;

  const Session* session_;  // only for the collective status checks
  int rank_;
  int nranks_;
  SessionOptions options_;
  std::string path_;
  Manifest manifest_;
  CommitMark mark_;  // to recognize the same file when deferred restores reopen it
  std::shared_ptr<SavedRecords> records_;
  std::weak_ptr<Trackable> root_;
  // Per checkpoint node: the index of its value in manifest_.tensors or .states, or -1.
  std::vector<int32_t> node_tensor_;
  std::vector<int32_t> node_state_;
  std::vector<std::weak_ptr<Trackable>> bound_;  // per checkpoint node
  std::vector<char> matched_;                    // per checkpoint node, even if the object died
  std::vector<char> restored_;                   // per checkpoint node
  std::vector<char> superseded_;                 // per checkpoint node: a newer restore provides it
  std::vector<int64_t> optimizer_nodes_;         // matched optimizer nodes with slots
  std::vector<uint32_t> visited_;  // per checkpoint node: the last match() that saw it
  uint32_t visit_epoch_ = 0;
  // This rank's own handle on the file, open while deferred values are pending.
  std::unique_ptr<ContainerReader> local_reader_;
  uint64_t generation_;
  int64_t pending_ = 0;  // checkpoint objects not matched plus values not restored
  // Per-rank values of saved ranks that no rank of this job took (the default rescale rule).
  std::vector<std::pair<int64_t, std::vector<int>>> dropped_;
  // A saved object reached by two paths that lead to two different live objects.
  struct Conflict {
    int64_t node;
    std::weak_ptr<Trackable> first, second;
  };
  std::vector<Conflict> conflicts_;
  bool expect_partial_ = false;
  // Set once an account found every saved object matched and every value restored; the
  // destructor's summary then has nothing to say and skips walking the graph again.
  mutable bool fully_used_ = false;
};

}  // namespace cairn::detail
