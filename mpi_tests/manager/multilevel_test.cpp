// SPDX-License-Identifier: Apache-2.0
// CheckpointManager with levels: node-local parts (level 1), partner copies and XOR parity across
// nodes (level 2), the background drain to the shared directory (level 3). Every rank acts as its
// own node (LevelOptions::rank_per_node); "losing a node" deletes its whole node-local directory,
// its part and the redundancy data it kept for others, as a dead host's RAM disk would.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_ranks_fault_everywhere;
using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

struct Cursor {
  int64_t position = 0;
  std::vector<int32_t> seen;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& position& seen;
  }
};

// Every rank but the last owns rows of `shape` (uneven); the last owns nothing.
std::shared_ptr<Variable> all_but_last(const Shape& shape) {
  const int owners = std::max(1, session().size() - 1);
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(session().size()));
  for (int r = 0; r < owners; ++r) {
    const int64_t first = shape[0] * r / owners, last = shape[0] * (r + 1) / owners;
    boxes[static_cast<std::size_t>(r)].push_back({{first, 0}, {last - first, shape[1]}});
  }
  return Variable::create<float>(session(), shape, Layout::explicit_boxes(std::move(boxes)));
}

// Uneven shards in a dataset, a packed tensor ranks beyond 2 own nothing of, replicated tensors
// (one large enough for several pieces), an explicit layout whose last rank owns nothing, and
// per-rank and global state.
struct Model {
  std::shared_ptr<Variable> big = Variable::create<float>(session(), {1031, 300}, Layout::block(0));
  std::shared_ptr<Variable> tiny = Variable::create<double>(session(), {2, 5}, Layout::block(0));
  std::shared_ptr<Variable> rep = Variable::create<float>(session(), {5}, Layout::replicated());
  std::shared_ptr<Variable> wide =
      Variable::create<float>(session(), {700, 1000}, Layout::replicated());
  std::shared_ptr<Variable> rows = all_but_last({37, 9});
  std::shared_ptr<State<Cursor>> cursor = std::make_shared<State<Cursor>>(StateScope::kPerRank);
  std::shared_ptr<State<Cursor>> global = std::make_shared<State<Cursor>>(StateScope::kGlobal);
  Checkpoint ckpt{session(),
                  {{"big", big},
                   {"tiny", tiny},
                   {"rep", rep},
                   {"wide", wide},
                   {"rows", rows},
                   {"cursor", cursor},
                   {"global", global}}};
  void set(int id) {
    fill(*big, id);
    fill(*tiny, id + 1);
    fill(*rep, id + 2);
    fill(*wide, id + 3);
    fill(*rows, id + 4);
    cursor->value().position = id * 100 + session().rank();
    cursor->value().seen.assign(static_cast<std::size_t>(id + session().rank()), id);
    global->value().position = id;
  }
  // Elements and state values that differ from set(id), over all ranks.
  int64_t mismatches(int id) const {
    const int64_t bad = session().comm().allreduce_sum(
        (cursor->value().position != id * 100 + session().rank() ? 1 : 0) +
        (cursor->value().seen !=
                 std::vector<int32_t>(static_cast<std::size_t>(id + session().rank()), id)
             ? 1
             : 0) +
        (global->value().position != id ? 1 : 0));
    return bad + global_mismatches(*big, id) + global_mismatches(*tiny, id + 1) +
           global_mismatches(*rep, id + 2) + global_mismatches(*wide, id + 3) +
           global_mismatches(*rows, id + 4);
  }
};

struct Dirs {
  std::string shared = scratch_dir();
  std::string local = shared + "/node-local";
  std::string node(int k) const { return local + "/node-" + std::to_string(k); }
};

ManagerOptions options(const Dirs& d, Redundancy redundancy, int shared_every = 1) {
  ManagerOptions o;
  o.max_to_keep = std::nullopt;
  o.levels.node_local_directory = d.local;
  o.levels.redundancy = redundancy;
  o.levels.shared_every = shared_every;
  o.levels.rank_per_node = true;
  return o;
}

// A host dies: its node-local directory goes with it. Rank 0 deletes; everyone waits.
void lose_nodes(const Dirs& d, const std::vector<int>& nodes) {
  session().comm().barrier();
  if (session().rank() == 0)
    for (int k : nodes) fs::remove_all(d.node(k));
  session().comm().barrier();
}

bool exists_everywhere(const std::function<bool()>& test) {
  return session().comm().allreduce_min(test() ? 1 : 0) == 1;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Multilevel, SavesEveryNodeItsPartDrainsAndRestoresFromItsOwnNode) {
  const Dirs d;
  {
    Model m;
    m.set(1);
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner));
    const std::optional<std::string> saved = mgr.save();
    ASSERT_TRUE(saved);
    EXPECT_EQ(*saved, d.shared + "/ckpt-1.h5");  // drained: the shared file is its name
    EXPECT_GT(mgr.last_node_local_seconds(), 0.0);
    mgr.wait();
    EXPECT_TRUE(exists_everywhere([&] { return fs::exists(d.shared + "/ckpt-1.h5"); }));
    const int me = session().rank();
    EXPECT_TRUE(exists_everywhere([&] { return fs::exists(d.node(me) + "/ckpt-1.h5"); }));
    EXPECT_EQ(latest_checkpoint(session(), d.shared), d.shared + "/ckpt-1.h5");
  }
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, options(d, Redundancy::kPartner));
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(*out.path, d.node(session().rank()) + "/ckpt-1.h5");
  EXPECT_EQ(out.level, "node-local");
  EXPECT_TRUE(out.rebuilt_nodes.empty());
  EXPECT_TRUE(out.skipped.empty());
  out.status->assert_consumed();
  EXPECT_EQ(fresh.mismatches(1), 0);
  EXPECT_EQ(fresh.ckpt.save_counter(), 1);
}

TEST(Multilevel, LostNodeIsRebuiltFromThePartnerCopyWithoutTheSharedFile) {
  const Dirs d;
  const int n = session().size();
  {
    Model m;
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner, /*shared_every=*/0));
    m.set(1);
    mgr.save();
    m.set(2);
    mgr.save();
  }
  // Nothing at level 3: whatever restores came from level 1 or 2.
  EXPECT_TRUE(exists_everywhere([&] { return !fs::exists(d.shared + "/ckpt-2.h5"); }));
  lose_nodes(d, {n - 1});
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, options(d, Redundancy::kPartner, 0));
  if (n == 1) {
    // One node has no partner: nothing can bring it back, and there is no shared copy.
    testing::expect_same_error_everywhere([&] { mgr.restore_or_initialize(); }, ErrorCode::kCorrupt,
                                          {"none of the", "refusing"});
    return;
  }
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.rebuilt_nodes, std::vector<int>{n - 1});
  EXPECT_EQ(out.level, session().rank() == n - 1 ? "partner copy" : "node-local");
  out.status->assert_consumed();
  EXPECT_EQ(fresh.mismatches(2), 0);
  // The rebuild protected the checkpoint again: now node 0 can go too.
  lose_nodes(d, {0});
  Model again;
  CheckpointManager mgr2(again.ckpt, d.shared, options(d, Redundancy::kPartner, 0));
  RestoreOutcome out2 = mgr2.restore_or_initialize();
  ASSERT_TRUE(out2.path);
  EXPECT_EQ(out2.rebuilt_nodes, std::vector<int>{0});
  EXPECT_EQ(again.mismatches(2), 0);
}

TEST(Multilevel, XorRebuildsOneLostNodePerGroupAndTwoLostFallBackToTheSharedFile) {
  const Dirs d;
  const int n = session().size();
  auto xor3 = [&] {
    ManagerOptions o = options(d, Redundancy::kXor);
    o.levels.xor_group_size = 3;
    return o;
  };
  {
    Model m;
    CheckpointManager mgr(m.ckpt, d.shared, xor3());
    m.set(5);
    mgr.save();
    mgr.wait();
  }
  lose_nodes(d, {0});
  {
    Model fresh;
    CheckpointManager mgr(fresh.ckpt, d.shared, xor3());
    RestoreOutcome out = mgr.restore_or_initialize();
    ASSERT_TRUE(out.path);
    EXPECT_EQ(fresh.mismatches(5), 0);
    if (n == 1) {
      EXPECT_EQ(out.level, "shared file");  // a group of one has no parity
    } else {
      EXPECT_EQ(out.rebuilt_nodes, std::vector<int>{0});
      EXPECT_EQ(out.level, session().rank() == 0 ? "xor parity" : "node-local");
    }
  }
  if (n == 1) return;
  // Nodes 0 and 1 share a group at every size here (2 nodes: one group; 3: one; 4: {0,2},{1,3}
  // or {0,1},{2,3} by host order, and all ranks share one host, so by index). Losing every node
  // is beyond any group.
  std::vector<int> all(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) all[static_cast<std::size_t>(k)] = k;
  lose_nodes(d, all);
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, xor3());
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(*out.path, d.shared + "/ckpt-1.h5");
  EXPECT_EQ(out.level, "shared file");
  ASSERT_EQ(out.skipped.size(), 1u);
  EXPECT_NE(out.skipped[0].reason.find("node-local copy"), std::string::npos)
      << out.skipped[0].reason;
  EXPECT_EQ(fresh.mismatches(5), 0);
}

TEST(Multilevel, WithoutRedundancyALostNodeFallsBackToTheNewestSharedCheckpoint) {
  const Dirs d;
  {
    Model m;
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kNone, /*shared_every=*/2));
    for (int id = 1; id <= 3; ++id) {
      m.set(id);
      mgr.save();
    }
    mgr.wait();
  }
  EXPECT_EQ(files_in(d.shared), (std::vector<std::string>{"cairn-state.json", "ckpt-2.h5"}));
  lose_nodes(d, {0});
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, options(d, Redundancy::kNone, 2));
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(*out.path, d.shared + "/ckpt-2.h5");
  EXPECT_EQ(out.level, "shared file");
  // ckpt-3 (node-local only, node 0 lost) and ckpt-2's node-local copy were named and skipped.
  ASSERT_EQ(out.skipped.size(), 2u);
  EXPECT_NE(out.skipped[0].reason.find("node 0"), std::string::npos) << out.skipped[0].reason;
  EXPECT_EQ(fresh.mismatches(2), 0);
}

TEST(Multilevel, RetentionIsPerLevel) {
  const Dirs d;
  Model m;
  ManagerOptions o = options(d, Redundancy::kPartner, /*shared_every=*/2);
  o.max_to_keep = 2;
  o.levels.keep_node_local = 2;
  CheckpointManager mgr(m.ckpt, d.shared, o);
  for (int id = 1; id <= 6; ++id) {
    m.set(id);
    mgr.save();
  }
  mgr.wait();
  // The retired node-local copies were deleted in the background, and wait() waited for that.
  EXPECT_GT(mgr.last_retire_seconds(), 0.0);
  EXPECT_EQ(files_in(d.shared),
            (std::vector<std::string>{"cairn-state.json", "ckpt-4.h5", "ckpt-6.h5"}));
  const int me = session().rank();
  const std::vector<std::string> mine = files_in(d.node(me));
  EXPECT_EQ(mine, (std::vector<std::string>{"ckpt-5.h5", "ckpt-6.h5"}));
  for (const std::string& f : files_in(d.node(me) + "/redundancy"))
    EXPECT_TRUE(f.find("ckpt-5") != std::string::npos || f.find("ckpt-6") != std::string::npos)
        << f;
  // Oldest first: 4 (shared only), 5 (node-local only: this rank's part), 6 (both: shared).
  EXPECT_EQ(mgr.checkpoints(),
            (std::vector<std::string>{d.shared + "/ckpt-4.h5", d.node(me) + "/ckpt-5.h5",
                                      d.shared + "/ckpt-6.h5"}));
}

TEST(Multilevel, RetiredCopiesAreDeletedBeforeTheManagerIsGone) {
  const Dirs d;
  const int me = session().rank();
  {
    Model m;
    ManagerOptions o = options(d, Redundancy::kPartner, /*shared_every=*/0);
    o.levels.keep_node_local = 1;
    CheckpointManager mgr(m.ckpt, d.shared, o);
    for (int id = 1; id <= 3; ++id) {
      m.set(id);
      mgr.save();
    }
    // No wait(): the deletion of ckpt-2's copies is over by the time the manager is gone.
  }
  EXPECT_EQ(files_in(d.node(me)), std::vector<std::string>{"ckpt-3.h5"});
  for (const std::string& f : files_in(d.node(me) + "/redundancy"))
    EXPECT_NE(f.find("ckpt-3"), std::string::npos) << f;
}

TEST(Multilevel, ANumberSavedAgainRightAfterItsRetirementKeepsItsNewCopy) {
  const Dirs d;
  Model m;
  ManagerOptions o = options(d, Redundancy::kPartner, /*shared_every=*/0);
  o.levels.keep_node_local = 1;
  CheckpointManager mgr(m.ckpt, d.shared, o);
  m.set(1);
  mgr.save(1);
  m.set(2);
  mgr.save(2);  // retires ckpt-1: its deletion runs on after save() returns
  m.set(3);
  mgr.save(1);  // must wait for that deletion before it writes ckpt-1 again
  mgr.wait();
  Model fresh;
  CheckpointManager again(fresh.ckpt, d.shared, o);
  RestoreOutcome out = again.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, "node-local");
  EXPECT_EQ(fresh.mismatches(3), 0);
}

TEST(Multilevel, RecoveryDeletesHalfWrittenAndUnrecordedParts) {
  const Dirs d;
  const int me = session().rank();
  {
    Model m;
    m.set(1);
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner));
    mgr.save();
  }
  // A save that died while writing, a part whose save died before the state file recorded it,
  // and the redundancy files of a checkpoint whose deletion was killed after its part went.
  std::ofstream(d.node(me) + "/ckpt-2.h5.tmp-77") << "half";
  fs::copy_file(d.node(me) + "/ckpt-1.h5", d.node(me) + "/ckpt-3.h5");
  fs::create_directories(d.node(me) + "/redundancy");
  std::ofstream(d.node(me) + "/redundancy/ckpt-4.h5.redundancy.json") << "{}";
  std::ofstream(d.node(me) + "/redundancy/ckpt-4.h5.partner-of-node0") << "copy";
  session().comm().barrier();
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, options(d, Redundancy::kPartner));
  EXPECT_EQ(files_in(d.node(me)), std::vector<std::string>{"ckpt-1.h5"});
  for (const std::string& f : files_in(d.node(me) + "/redundancy"))
    EXPECT_EQ(f.find("ckpt-4"), std::string::npos) << f;
  int deleted = 0;
  for (const std::string& note : mgr.recovery_notes()) deleted += note.find("deleted") == 0;
  EXPECT_EQ(deleted, 3);
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, "node-local");
  EXPECT_EQ(fresh.mismatches(1), 0);
}

TEST(Multilevel, AnotherNodeGroupingRestoresFromTheSharedFile) {
  const Dirs d;
  {
    Model m;
    m.set(7);
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner));
    mgr.save();
  }
  // All ranks on one host form one node: another geometry than one node per rank.
  ManagerOptions grouped = options(d, Redundancy::kPartner);
  grouped.levels.rank_per_node = false;
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, grouped);
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, session().size() == 1 ? "node-local" : "shared file");
  EXPECT_EQ(fresh.mismatches(7), 0);
}

TEST(Multilevel, AnotherGroupingWithOnlyNodeLocalCopiesRefusesToStartFromScratch) {
  const Dirs d;
  {
    Model m;
    m.set(8);
    CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner, /*shared_every=*/0));
    mgr.save();
  }
  ManagerOptions grouped = options(d, Redundancy::kPartner, 0);
  grouped.levels.rank_per_node = false;
  Model fresh;
  CheckpointManager mgr(fresh.ckpt, d.shared, grouped);
  if (session().size() == 1) {  // one rank is one node either way: the part restores
    RestoreOutcome out = mgr.restore_or_initialize();
    ASSERT_TRUE(out.path);
    EXPECT_EQ(fresh.mismatches(8), 0);
    return;
  }
  bool initialized = false;
  testing::expect_same_error_everywhere(
      [&] { mgr.restore_or_initialize([&] { initialized = true; }); }, ErrorCode::kCorrupt,
      {"refusing to start from scratch", "restore only at the geometry that saved them"});
  EXPECT_FALSE(initialized);
}

// Nodes on either side of the size above which a save computes its checksums while writing: the
// choice must be the job's, or the nodes make different agreements and the save hangs.
TEST(Multilevel, NodesOfVeryDifferentSizesSaveTogether) {
  const Dirs d;
  const int n = session().size();
  const int64_t heavy_rows = 4500, light_rows = 10;  // 4 KiB rows: 17.6 MiB on rank 0
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(n));
  int64_t row = 0;
  for (int r = 0; r < n; ++r) {
    const int64_t rows = r == 0 ? heavy_rows : light_rows;
    boxes[static_cast<std::size_t>(r)].push_back({{row, 0}, {rows, 1024}});
    row += rows;
  }
  auto make = [&] {
    return Variable::create<float>(session(), {row, 1024}, Layout::explicit_boxes(boxes));
  };
  auto v = make();
  fill(*v, 21);
  {
    Checkpoint ckpt(session(), {{"v", v}});
    CheckpointManager mgr(ckpt, d.shared, options(d, Redundancy::kPartner, /*shared_every=*/0));
    mgr.save();
  }
  auto back = make();
  Checkpoint ckpt(session(), {{"v", back}});
  CheckpointManager mgr(ckpt, d.shared, options(d, Redundancy::kPartner, 0));
  RestoreOutcome out = mgr.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, "node-local");
  EXPECT_EQ(global_mismatches(*back, 21), 0);
}

TEST(Multilevel, DrainFailureKeepsTheNodeLocalCopyAndTrainingGoesOn) {
  const Dirs d;
  // A directory where the drained file would go: its final rename fails.
  if (session().rank() == 0) fs::create_directories(d.shared + "/ckpt-1.h5");
  session().comm().barrier();
  Model m;
  CheckpointManager mgr(m.ckpt, d.shared, options(d, Redundancy::kPartner));
  m.set(1);
  mgr.save();
  m.set(2);
  EXPECT_NO_THROW(mgr.save());  // the first drain's failure is logged, not thrown
  mgr.wait();
  Model fresh;
  CheckpointManager again(fresh.ckpt, d.shared, options(d, Redundancy::kPartner));
  RestoreOutcome out = again.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, "node-local");
  EXPECT_EQ(fresh.mismatches(2), 0);
  EXPECT_EQ(latest_checkpoint(session(), d.shared), d.shared + "/ckpt-2.h5");
}

// Collective. No node, nor the shared directory, holds a file of checkpoint `name` (its parts,
// their temporary files, partner copies).
void expect_no_file_of(const Dirs& d, const std::string& name) {
  session().comm().barrier();  // each part's first rank removes its temporary file first
  for (const std::string& dir : {d.node(session().rank()), d.shared})
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      EXPECT_EQ(entry.path().filename().string().find(name), std::string::npos) << entry.path();
}

// Collective. A new job's manager restores step `step` exactly from the node-local parts.
void expect_node_local_restore(const Dirs& d, int step) {
  Model fresh;
  CheckpointManager again(fresh.ckpt, d.shared,
                          options(d, Redundancy::kPartner, /*shared_every=*/0));
  RestoreOutcome out = again.restore_or_initialize();
  ASSERT_TRUE(out.path);
  EXPECT_EQ(out.level, "node-local");
  out.status->assert_consumed();
  EXPECT_EQ(fresh.mismatches(step), 0);
}

// Node-local levels only (partner copies, no drain): step 1 saved, step 2's values set.
struct StepOneSaved {
  Dirs d;
  Model m;
  CheckpointManager mgr{m.ckpt, d.shared, options(d, Redundancy::kPartner, /*shared_every=*/0)};
  StepOneSaved() {
    m.set(1);
    EXPECT_TRUE(mgr.save());
    m.set(2);
  }
};

// A node-local save writes one file per node (here: per rank), whose first rank builds its table
// and merges its checksums; every step a save agrees on together with another still turns one
// rank's failure into the same error on every rank, and leaves no file of the failed checkpoint
// on any node.
TEST(Multilevel, EveryMergedAgreementOfANodeLocalSaveReportsOneRanksFailureEverywhere) {
  StepOneSaved job;
  // Plain references: clang before 16 cannot capture structured bindings in lambdas.
  const Dirs& d = job.d;
  CheckpointManager& mgr = job.mgr;
  const int last = session().size() - 1;
  // save_table and save_table_checksums run on each part's first rank: the last rank's own part.
  for (const std::string phase :
       {"save_plan", "save_checksums", "save_table", "save_record", "save_table_checksums"}) {
    SCOPED_TRACE(phase + " on rank " + std::to_string(last));
    expect_one_ranks_fault_everywhere(phase, last, "save", [&] { mgr.save(); });
    expect_no_file_of(d, "ckpt-2");
  }
  ASSERT_TRUE(mgr.save());  // the ranks are in step
  mgr.wait();
  expect_node_local_restore(d, 2);
}

// One node's disk has no room for its part (the CAIRN_FAULT_FREE_BYTES hook tells its first rank
// so): that node refuses before creating its file, the others create theirs, and the job agrees:
// every rank throws the node's error, and no node keeps a file of the refused checkpoint.
TEST(Multilevel, ANodeWithoutRoomForItsPartFailsTheSaveOnEveryRank) {
  StepOneSaved job;
  // Plain references: clang before 16 cannot capture structured bindings in lambdas.
  const Dirs& d = job.d;
  CheckpointManager& mgr = job.mgr;
  const int last = session().size() - 1;
  {
    const testing::ScopedEnv room("CAIRN_FAULT_FREE_BYTES", "1024:" + std::to_string(last));
    testing::expect_same_error_everywhere(
        [&] { mgr.save(); }, ErrorCode::kIo,
        {"No space left for this checkpoint", "has 1024 bytes", "nothing was written",
         "[rank " + std::to_string(last) + ",", d.node(last) + "/ckpt-2.h5"});
  }
  expect_no_file_of(d, "ckpt-2");
  ASSERT_TRUE(mgr.save());
  mgr.wait();
  expect_node_local_restore(d, 2);
}

// A node whose node-local directory is gone and cannot be made again (a regular file in its
// place; on a cluster, a lost or read-only RAM disk mount): its rank's check before the collective
// create fails the save on every rank with that rank's error, and nobody waits in HDF5.
TEST(Multilevel, ANodeWhoseDirectoryCannotBeUsedFailsTheSaveOnEveryRank) {
  StepOneSaved job;
  // Plain references: clang before 16 cannot capture structured bindings in lambdas.
  const Dirs& d = job.d;
  CheckpointManager& mgr = job.mgr;
  const int last = session().size() - 1;
  session().comm().barrier();
  if (session().rank() == last) {
    fs::remove_all(d.node(last));
    std::ofstream(d.node(last)) << "not a directory";
  }
  session().comm().barrier();
  testing::expect_same_error_everywhere([&] { mgr.save(); }, ErrorCode::kIo,
                                        {"[rank " + std::to_string(last) + ",", d.node(last)});
  session().comm().barrier();
  if (session().rank() == last) {
    fs::remove(d.node(last));
    fs::create_directories(d.node(last));
  }
  session().comm().barrier();
  ASSERT_TRUE(mgr.save());
  mgr.wait();
}

TEST(Multilevel, OptionsAreCheckedTheSameOnEveryRank) {
  const Dirs d;
  Model m;
  ManagerOptions bad = options(d, Redundancy::kXor);
  if (session().rank() == session().size() - 1) bad.levels.xor_group_size = 1;
  testing::expect_same_error_everywhere([&] { CheckpointManager(m.ckpt, d.shared, bad); },
                                        ErrorCode::kInvalidArgument, {"xor_group_size"});
  ManagerOptions differ = options(d, Redundancy::kPartner);
  if (session().rank() == 0) differ.levels.keep_node_local = 3;
  if (session().size() > 1)
    testing::expect_same_error_everywhere([&] { CheckpointManager(m.ckpt, d.shared, differ); },
                                          ErrorCode::kInvalidArgument, {"disagree"});
}

TEST(Multilevel, EnvironmentOverridesForBatchScripts) {
  // Guards: a failed assertion must not leave an override set for the tests after this one.
  const testing::ScopedEnv redundancy("CAIRN_REDUNDANCY", "xor:3");
  const testing::ScopedEnv every("CAIRN_SHARED_EVERY", "4");
  const testing::ScopedEnv dir("CAIRN_NODE_LOCAL_DIR", "/path/to/ramdisk");
  const LevelOptions l = levels_from_environment({});
  EXPECT_EQ(l.redundancy, Redundancy::kXor);
  EXPECT_EQ(l.xor_group_size, 3);
  EXPECT_EQ(l.shared_every, 4);
  EXPECT_EQ(l.node_local_directory, "/path/to/ramdisk");
  const testing::ScopedEnv mirror("CAIRN_REDUNDANCY", "mirror");
  try {
    levels_from_environment({});
    ADD_FAILURE() << "accepted CAIRN_REDUNDANCY=mirror";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("CAIRN_REDUNDANCY='mirror'"), std::string::npos);
  }
}

}  // namespace
}  // namespace cairn
