// SPDX-License-Identifier: Apache-2.0
// The free-space check a save makes before it creates its file (SessionOptions::check_free_space):
// it refuses only a save whose data and metadata alone exceed the room statvfs reports, and never
// when the file system does not say, and every rank gets the same error. Here the room is set with
// the CAIRN_FAULT_FREE_BYTES hook; real full disks are in mpi_tests/fault/disk_full_test.sh (a
// tmpfs, 1-3 ranks).
#include <gtest/gtest.h>

#include <cstdint>
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

// Uneven shards in a dataset (7 ranks: some own nothing), a packed tensor, and a replicated
// dataset (1.2 MB: beyond the packing threshold; each piece written once, by one rank).
Checkpoint::Children model(const Session& s) {
  auto big = Variable::create<float>(s, {1031, 300}, Layout::block(0));
  auto tiny = Variable::create<double>(s, {2, 5}, Layout::block(0));
  auto rep = Variable::create<float>(s, {300, 1000}, Layout::replicated());
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

// Collective. Saves `ckpt` to `path` with the hook telling rank `asked` that `free_bytes` are
// left; returns the error text (the same on every rank), empty if the save succeeded.
std::string save_with_room(Checkpoint& ckpt, const std::string& path, int64_t free_bytes,
                           int asked) {
  const testing::ScopedEnv room("CAIRN_FAULT_FREE_BYTES",
                                std::to_string(free_bytes) + ":" + std::to_string(asked));
  std::string text;
  try {
    ckpt.write(path);
  } catch (const Error& e) {
    text = e.what();
  }
  const auto all = testing::session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
  return text;
}

TEST(FreeSpace, ASaveThatCannotFitIsRefusedOnEveryRankBeforeItsFileExists) {
  const std::string dir = testing::scratch_dir();
  const std::string path = dir + "/full.h5";
  Checkpoint ckpt(testing::session(), model(testing::session()));
  {
    const testing::ScopedEnv room("CAIRN_FAULT_FREE_BYTES", "4096:0");  // rank 0 asks
    testing::expect_same_error_everywhere(
        [&] { ckpt.write(path); }, ErrorCode::kIo,
        {"No space left for this checkpoint", "has 4096 bytes (4.0 KiB) free",
         "nothing was written", "checkpoint " + path, "[rank 0,"});
    testing::session().comm().barrier();
    EXPECT_FALSE(any_file_named(dir, "full.h5"));  // nor a temporary file
    // Off, the check asks nothing: the same save goes ahead.
    SessionOptions unchecked;
    unchecked.check_free_space = false;
    const Session s(MPI_COMM_WORLD, unchecked);
    EXPECT_NO_THROW(Checkpoint(s, model(s)).write(dir + "/unchecked.h5"));
  }
  // The bound is what the save writes of data and metadata: refused one byte short of it, saved
  // with exactly that much (the real disk has the room).
  const std::string refused = save_with_room(ckpt, path, 4096, 0);
  const std::size_t at = refused.find("alone take ");
  ASSERT_NE(at, std::string::npos) << refused;
  const int64_t needed = std::stoll(refused.substr(at + 11));
  EXPECT_GT(needed, int64_t{1031} * 300 * 4 + 300 * 1000 * 4);  // at least the tensors' bytes
  EXPECT_NE(save_with_room(ckpt, path, needed - 1, 0).find("No space"), std::string::npos);
  EXPECT_EQ(save_with_room(ckpt, path, needed, 0), "");
  EXPECT_GE(std::filesystem::file_size(path), static_cast<std::uintmax_t>(needed));
  // Only the file's first rank asks: what another rank would be told does not count.
  if (testing::session().size() > 1) {
    EXPECT_EQ(save_with_room(ckpt, dir + "/other.h5", 0, testing::session().size() - 1), "");
  }
  auto big = Variable::create<float>(testing::session(), {1031, 300}, Layout::block(1));
  auto rep = Variable::create<float>(testing::session(), {300, 1000}, Layout::replicated());
  Checkpoint(testing::session(), {{"big", big}, {"rep", rep}}).read(path).expect_partial();
  EXPECT_EQ(testing::global_mismatches(*big, 31), 0);
  EXPECT_EQ(testing::global_mismatches(*rep, 33), 0);
}

TEST(FreeSpace, IsReportedForAnExistingDirectoryOnly) {
  const std::string dir = testing::scratch_dir();
  EXPECT_GT(free_bytes_for(dir + "/ckpt-1.h5"), 0);
  EXPECT_EQ(free_bytes_for(dir + "/no-such-directory/ckpt-1.h5"), -1);
}

}  // namespace
}  // namespace cairn::detail
