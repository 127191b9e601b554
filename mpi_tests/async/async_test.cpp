// SPDX-License-Identifier: Apache-2.0
// Asynchronous saves: a consistent snapshot, one save in flight, restores wait, background
// failures reach every rank and never become latest, the user's MPI traffic goes on meanwhile.
#include <gtest/gtest.h>

#include <filesystem>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::global_mismatches;
using testing::session;

namespace fs = std::filesystem;
using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;

struct Model {
  // 4 MiB sharded (a dataset) and a small replicated one (packed).
  std::shared_ptr<Variable> big = Variable::create<float>(session(), {1 << 20}, Layout::block(0));
  std::shared_ptr<Variable> small =
      Variable::create<double>(session(), {7, 3}, Layout::replicated());
  Checkpoint ckpt{session(), {{"big", big}, {"small", small}}};
  void set(int id) {
    fill(*big, id);
    fill(*small, id + 1000);
  }
  int64_t mismatches(int id) const {
    return global_mismatches(*big, id) + global_mismatches(*small, id + 1000);
  }
};

TEST(Async, ValuesChangedAfterReturnDoNotLeakIntoTheCheckpoint) {
  ASSERT_GE(session().thread_level(), MPI_THREAD_MULTIPLE);
  const std::string dir = scratch_dir();
  Model m;
  m.set(1);
  const std::string path = m.ckpt.save_async(dir + "/ck");
  EXPECT_EQ(path, dir + "/ck-1.h5");
  EXPECT_EQ(m.ckpt.save_counter(), 1);
  m.set(2);  // training goes on while the save runs
  m.ckpt.wait();
  EXPECT_FALSE(m.ckpt.save_in_flight());
  EXPECT_EQ(latest_checkpoint(session(), dir), path);
  EXPECT_GT(m.ckpt.last_save().bytes, 4 << 20);
  Model r;
  r.ckpt.read(path).assert_consumed();
  EXPECT_EQ(r.mismatches(1), 0);
}

TEST(Async, BackToBackSavesRunOneAtATime) {
  const std::string dir = scratch_dir();
  Model m;
  for (int id = 1; id <= 4; ++id) {
    m.set(id);
    m.ckpt.save_async(dir + "/ck");  // waits for the previous one first
  }
  m.ckpt.wait();
  EXPECT_EQ(latest_checkpoint(session(), dir), dir + "/ck-4.h5");
  for (int id = 1; id <= 4; ++id) {
    Model r;
    r.ckpt.read(dir + "/ck-" + std::to_string(id) + ".h5").assert_consumed();
    EXPECT_EQ(r.mismatches(id), 0) << "checkpoint " << id;
  }
}

TEST(Async, RestoreDuringAnInFlightSaveWaitsForIt) {
  const std::string dir = scratch_dir();
  Model m;
  m.set(5);
  const std::string path = m.ckpt.save_async(dir + "/ck");
  m.set(6);
  m.ckpt.restore(path).assert_consumed();  // waits, then reads the complete file
  EXPECT_EQ(m.mismatches(5), 0);
  EXPECT_EQ(m.ckpt.save_counter(), 1);
}

TEST(Async, BackgroundFailureReachesEveryRankAndLatestStays) {
  const std::string dir = scratch_dir();
  Model m;
  m.set(7);
  const std::string good = m.ckpt.save(dir + "/ck");
  // A directory where the file must go: the final rename fails, in the background, on rank 0.
  if (session().rank() == 0) fs::create_directories(dir + "/ck-2.h5");
  MPI_Barrier(MPI_COMM_WORLD);
  m.set(8);
  m.ckpt.save_async(dir + "/ck");
  std::string text;
  try {
    m.ckpt.wait();
  } catch (const Error& e) {
    text = e.what();
  }
  EXPECT_NE(text.find("ck-2.h5"), std::string::npos) << text;
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
  EXPECT_EQ(m.ckpt.save_counter(), 1);  // rolled back
  EXPECT_EQ(latest_checkpoint(session(), dir), good);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  Model r;
  r.ckpt.read(good).assert_consumed();
  EXPECT_EQ(r.mismatches(7), 0);
}

TEST(Async, UserMpiTrafficDuringTheBackgroundWrite) {
  const std::string dir = scratch_dir();
  Model m;
  m.set(9);
  const std::string path = m.ckpt.save_async(dir + "/ck");
  // The application keeps communicating on its own communicator meanwhile.
  int64_t sum = 0;
  for (int i = 0; i < 200; ++i) {
    int64_t mine = session().rank() + i, total = 0;
    MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    sum += total;
  }
  const int64_t n = session().size();
  EXPECT_EQ(sum, 200 * n * (n - 1) / 2 + n * (199 * 200 / 2));
  m.ckpt.wait();
  Model r;
  r.ckpt.read(path).assert_consumed();
  EXPECT_EQ(r.mismatches(9), 0);
}

TEST(Async, ManagerSaveAsyncKeepsRetentionAndState) {
  const std::string dir = scratch_dir();
  Model m;
  CheckpointManager mgr(m.ckpt, dir, {.max_to_keep = 2});
  for (int id = 1; id <= 4; ++id) {
    m.set(id);
    mgr.save_async();
  }
  std::vector<std::string> names;
  for (const auto& p : mgr.checkpoints()) names.push_back(fs::path(p).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-3.h5", "ckpt-4.h5"}));
  EXPECT_EQ(mgr.latest_checkpoint(), dir + "/ckpt-4.h5");
  EXPECT_FALSE(fs::exists(dir + "/ckpt-1.h5"));
  Model r;
  CheckpointManager restorer(r.ckpt, dir);
  auto outcome = restorer.restore_or_initialize();
  EXPECT_EQ(outcome.path, dir + "/ckpt-4.h5");
  EXPECT_EQ(r.mismatches(4), 0);
}

}  // namespace
}  // namespace cairn
