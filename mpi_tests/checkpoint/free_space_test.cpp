// SPDX-License-Identifier: Apache-2.0
// The free-space check a save makes before it creates its file (SessionOptions::check_free_space):
// it refuses only a save whose data and metadata alone exceed the room statvfs reports, and never
// when the file system does not say, and every rank gets the same error. Here the room is set with
// the CAIRN_FAULT_FREE_BYTES hook; real full disks are in mpi_tests/fault/disk_full_test.sh (a
// tmpfs, 1-3 ranks).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cairn/cairn.hpp"
#include "checkpoint/save_metadata.hpp"
#include "storage/durable_file.hpp"
#include "support/test_support.hpp"

namespace cairn::detail {
namespace {

TEST(FreeSpace, RefusesOnlyASaveThatCannotFit) {
  EXPECT_NO_THROW(check_free_space(100, 100, 0, "/data/run/ckpt-3.h5"));
  EXPECT_NO_THROW(check_free_space(100, 1 << 20, 0, "/data/run/ckpt-3.h5"));
  EXPECT_NO_THROW(check_free_space(100, -1, 0, "/data/run/ckpt-3.h5"));  // not known
  try {
    check_free_space(100, 99, 2, "/data/run/ckpt-3.h5");
    FAIL() << "a save of 100 bytes into 99 free bytes was not refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_EQ(e.context().rank, 2);  // the rank that asked the file system
    EXPECT_EQ(e.context().checkpoint, "/data/run/ckpt-3.h5");
    const std::string text = e.what();
    EXPECT_NE(text.find("No space"), std::string::npos) << text;
    EXPECT_NE(text.find("take 100 bytes"), std::string::npos) << text;
    EXPECT_NE(text.find("'/data/run' has 99 bytes"), std::string::npos) << text;
    EXPECT_NE(text.find("nothing was written"), std::string::npos) << text;
  }
}

// Uneven shards in a dataset (7 ranks: some own nothing), a packed tensor, a replicated one.
Checkpoint::Children model(const Session& s) {
  auto big = Variable::create<float>(s, {1031, 300}, Layout::block(0));
  auto tiny = Variable::create<double>(s, {2, 5}, Layout::block(0));
  auto rep = Variable::create<float>(s, {5}, Layout::replicated());
  testing::fill(*big, 31);
  testing::fill(*tiny, 32);
  testing::fill(*rep, 33);
  return {{"big", big}, {"tiny", tiny}, {"rep", rep}};
}

bool any_file_named(const std::string& dir, const std::string& prefix) {
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

TEST(FreeSpace, ASaveThatCannotFitIsRefusedOnEveryRankBeforeItsFileExists) {
  const std::string dir = testing::scratch_dir();
  const std::string path = dir + "/full.h5";
  Checkpoint ckpt(testing::session(), model(testing::session()));
  ::setenv("CAIRN_FAULT_FREE_BYTES", "4096:0", 1);  // rank 0 asks the file system
  testing::expect_same_error_everywhere(
      [&] { ckpt.write(path); }, ErrorCode::kIo,
      {"No space left for this checkpoint", "has 4096 bytes (4.0 KiB) free", "nothing was written",
       "checkpoint " + path, "[rank 0,"});
  testing::session().comm().barrier();
  EXPECT_FALSE(any_file_named(dir, "full.h5"));  // nor a temporary file
  // Off, the check asks nothing: the same save goes ahead.
  {
    SessionOptions unchecked;
    unchecked.check_free_space = false;
    const Session s(MPI_COMM_WORLD, unchecked);
    EXPECT_NO_THROW(Checkpoint(s, model(s)).write(path));
  }
  ::unsetenv("CAIRN_FAULT_FREE_BYTES");
  // The first rank's room is what counts; with room, the refused save works and restores.
  ckpt.write(dir + "/room.h5");
  auto big = Variable::create<float>(testing::session(), {1031, 300}, Layout::block(1));
  Checkpoint(testing::session(), {{"big", big}}).read(dir + "/room.h5").expect_partial();
  EXPECT_EQ(testing::global_mismatches(*big, 31), 0);
}

TEST(FreeSpace, IsReportedForAnExistingDirectoryOnly) {
  const std::string dir = testing::scratch_dir();
  EXPECT_GT(free_bytes_for(dir + "/ckpt-1.h5"), 0);
  EXPECT_EQ(free_bytes_for(dir + "/no-such-directory/ckpt-1.h5"), -1);
}

}  // namespace
}  // namespace cairn::detail
