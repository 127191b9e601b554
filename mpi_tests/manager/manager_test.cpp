// SPDX-License-Identifier: Apache-2.0
// CheckpointManager: retention, intervals, numbering, ownership and state-file recovery.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::session;

namespace fs = std::filesystem;
using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;

struct Job {
  std::shared_ptr<Variable> v = Variable::create<float>(session(), {11, 3}, Layout::block(0));
  Checkpoint ckpt{session(), {{"v", v}}};
};

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> names(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(fs::path(p).filename().string());
  return out;
}

TEST(Manager, MaxToKeepDeletesOldestAndListsOldestFirst) {
  const std::string dir = scratch_dir();
  Job job;
  CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = 2});
  for (int i = 0; i < 4; ++i) mgr.save();
  EXPECT_EQ(names(mgr.checkpoints()), (std::vector<std::string>{"ckpt-3.h5", "ckpt-4.h5"}));
  EXPECT_EQ(mgr.latest_checkpoint(), dir + "/ckpt-4.h5");
  EXPECT_EQ(latest_checkpoint(session(), dir), dir + "/ckpt-4.h5");
  EXPECT_EQ(files_in(dir),
            (std::vector<std::string>{"cairn-state.json", "ckpt-3.h5", "ckpt-4.h5"}));
}

TEST(Manager, UnlimitedKeepsEverythingAndNonPositiveIsRejected) {
  const std::string dir = scratch_dir();
  Job job;
  CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = std::nullopt});
  for (int i = 0; i < 6; ++i) mgr.save();
  EXPECT_EQ(mgr.checkpoints().size(), 6u);
  EXPECT_THROW(CheckpointManager(job.ckpt, dir, {.max_to_keep = 0}), Error);
  EXPECT_THROW(CheckpointManager(job.ckpt, dir, {.max_to_keep = -3}), Error);
}

TEST(Manager, CustomNumbersAndPrefix) {
  const std::string dir = scratch_dir();
  Job job;
  CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = 3, .checkpoint_name = "model"});
  EXPECT_EQ(mgr.save(100), dir + "/model-100.h5");
  EXPECT_EQ(mgr.save(250), dir + "/model-250.h5");
  EXPECT_EQ(mgr.save(), dir + "/model-3.h5");  // the save counter numbers when no number is given
  EXPECT_EQ(job.ckpt.save_counter(), 3);
  EXPECT_THROW(CheckpointManager(job.ckpt, dir, {.checkpoint_name = "a/b"}), Error);
}

TEST(Manager, IntervalGatesSavesByStepAndForceOverrides) {
  const std::string dir = scratch_dir();
  Job job;
  int64_t step = 0;
  CheckpointManager mgr(
      job.ckpt, dir, {.max_to_keep = std::nullopt, .checkpoint_interval = 10, .step_counter = [&] {
                        return step;
                      }});
  std::vector<int64_t> saved_at;
  for (step = 0; step <= 35; ++step)
    if (mgr.save(step)) saved_at.push_back(step);
  EXPECT_EQ(saved_at, (std::vector<int64_t>{0, 10, 20, 30}));
  step = 31;
  EXPECT_FALSE(mgr.save(step).has_value());
  EXPECT_TRUE(mgr.save(step, /*check_interval=*/false).has_value());
  EXPECT_THROW(CheckpointManager(job.ckpt, dir, {.checkpoint_interval = 5}), Error);  // no counter
}

TEST(Manager, KeepEveryNHoursPreservesWithAControlledClock) {
  const std::string dir = scratch_dir();
  Job job;
  int64_t now = 1'000'000;
  CheckpointManager mgr(
      job.ckpt, dir,
      {.max_to_keep = 2, .keep_checkpoint_every_n_hours = 1.0, .clock = [&] { return now; }});
  // One save every 20 minutes for 3 hours: every third retired checkpoint is an hour apart.
  for (int i = 1; i <= 10; ++i) {
    now += 20 * 60;
    mgr.save();
  }
  EXPECT_EQ(names(mgr.checkpoints()), (std::vector<std::string>{"ckpt-9.h5", "ckpt-10.h5"}));
  // Preserved (never deleted): those at +60, +120 and +180 minutes, i.e. ckpt-3, ckpt-6.
  const auto files = files_in(dir);
  EXPECT_EQ(files, (std::vector<std::string>{"cairn-state.json", "ckpt-10.h5", "ckpt-3.h5",
                                             "ckpt-6.h5", "ckpt-9.h5"}));
}

TEST(Manager, DeletesOnlyWhatItOwns) {
  const std::string dir = scratch_dir();
  Job job;
  job.ckpt.save(dir + "/ckpt");  // a plain save: ckpt-1.h5, owned by nobody
  Checkpoint other(session(), {{"v", job.v}});
  CheckpointManager other_mgr(other, dir, {.max_to_keep = 1, .checkpoint_name = "other"});
  other_mgr.save();
  CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = 1});
  for (int i = 0; i < 3; ++i) mgr.save();
  EXPECT_EQ(names(mgr.checkpoints()), (std::vector<std::string>{"ckpt-4.h5"}));
  EXPECT_EQ(files_in(dir),
            (std::vector<std::string>{"cairn-state.json", "ckpt-1.h5", "ckpt-4.h5", "other-1.h5"}));
}

TEST(Manager, ANewManagerRecoversTheStateOfAnEarlierOne) {
  const std::string dir = scratch_dir();
  {
    Job job;
    CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = 3});
    for (int i = 0; i < 4; ++i) mgr.save();
  }
  Job job;
  CheckpointManager mgr(job.ckpt, dir, {.max_to_keep = 3});
  EXPECT_EQ(names(mgr.checkpoints()),
            (std::vector<std::string>{"ckpt-2.h5", "ckpt-3.h5", "ckpt-4.h5"}));
  EXPECT_TRUE(mgr.recovery_notes().empty());
  auto outcome = mgr.restore_or_initialize();
  EXPECT_EQ(outcome.path, dir + "/ckpt-4.h5");
  EXPECT_EQ(job.ckpt.save_counter(), 4);
  EXPECT_EQ(mgr.save(), dir + "/ckpt-5.h5");  // numbering continues; ckpt-2 is retired
  EXPECT_EQ(names(mgr.checkpoints()),
            (std::vector<std::string>{"ckpt-3.h5", "ckpt-4.h5", "ckpt-5.h5"}));
}

TEST(Manager, RestoreOrInitializeRunsInitOnlyWithoutCheckpoints) {
  const std::string dir = scratch_dir();
  {
    Job job;
    fill(*job.v, 8);
    CheckpointManager mgr(job.ckpt, dir);
    int inits = 0;
    auto outcome = mgr.restore_or_initialize([&] { ++inits; });
    EXPECT_EQ(inits, 1);
    EXPECT_FALSE(outcome.path.has_value());
    mgr.save();
  }
  Job job;
  CheckpointManager mgr(job.ckpt, dir);
  int inits = 0;
  auto outcome = mgr.restore_or_initialize([&] { ++inits; });
  EXPECT_EQ(inits, 0);
  ASSERT_TRUE(outcome.path.has_value());
  outcome.status->assert_consumed();
  EXPECT_EQ(session().comm().allreduce_sum(count_mismatches(*job.v, 8)), 0);
}

TEST(Manager, DamagedStateFileIsAnErrorNotAnEmptyDirectory) {
  const std::string dir = scratch_dir();
  {
    Job job;
    CheckpointManager(job.ckpt, dir).save();
  }
  if (session().rank() == 0) std::ofstream(dir + "/cairn-state.json") << "{\"format\": \"cairn-st";
  MPI_Barrier(MPI_COMM_WORLD);
  Job job;
  try {
    CheckpointManager mgr(job.ckpt, dir);
    FAIL() << "a damaged state file must not look like an empty directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("state file is damaged"), std::string::npos) << e.what();
  }
  // Removing it lets the manager rebuild the state from the committed files.
  if (session().rank() == 0) fs::remove(dir + "/cairn-state.json");
  MPI_Barrier(MPI_COMM_WORLD);
  CheckpointManager mgr(job.ckpt, dir);
  EXPECT_EQ(names(mgr.checkpoints()), (std::vector<std::string>{"ckpt-1.h5"}));
  EXPECT_EQ(mgr.recovery_notes().size(), 1u);
}

TEST(Manager, NonIntegerNumbersInTheStateFileAreDamage) {
  // 1e30 where an integer belongs: a clear error, not an undefined float-to-integer cast.
  for (const char* text :
       {R"({"format": "cairn-state", "version": 1e30, "latest": "", "checkpoints": []})",
        R"({"format": "cairn-state", "version": 1, "latest": "c.h5", "checkpoints": [)"
        R"({"name": "c.h5", "created_unix": 2.5, "owner": "x"}]})"}) {
    const std::string dir = scratch_dir();
    if (session().rank() == 0) std::ofstream(dir + "/cairn-state.json") << text;
    MPI_Barrier(MPI_COMM_WORLD);
    Job job;
    try {
      CheckpointManager mgr(job.ckpt, dir);
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
      EXPECT_NE(std::string(e.what()).find("must be an integer"), std::string::npos) << e.what();
    }
  }
}

TEST(Manager, LeftoversAreCleanedAndUnrecordedCommittedFilesAdopted) {
  const std::string dir = scratch_dir();
  Job job;
  {
    CheckpointManager mgr(job.ckpt, dir);
    mgr.save();
    mgr.save();
  }
  // Simulate crashes: a temporary file of a save that died, a committed ckpt-3 the state file
  // never heard of (death between rename and state update), and a stranger's file.
  if (session().rank() == 0) {
    fs::copy_file(dir + "/ckpt-2.h5", dir + "/ckpt-3.h5");
    std::ofstream(dir + "/ckpt-4.h5.tmp-123-456") << "half a file";
    std::ofstream(dir + "/notes.txt") << "mine";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  CheckpointManager mgr(job.ckpt, dir);
  EXPECT_EQ(mgr.recovery_notes().size(), 2u);
  EXPECT_EQ(names(mgr.checkpoints()),
            (std::vector<std::string>{"ckpt-1.h5", "ckpt-2.h5", "ckpt-3.h5"}));
  EXPECT_EQ(mgr.latest_checkpoint(), dir + "/ckpt-3.h5");
  EXPECT_FALSE(fs::exists(dir + "/ckpt-4.h5.tmp-123-456"));
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
}

}  // namespace
}  // namespace cairn
