// SPDX-License-Identifier: Apache-2.0
// restore_or_initialize falls back to the newest checkpoint that restores when the newest is
// truncated, bit-flipped or deleted, says which it skipped and why, and refuses to start over when
// nothing restores.
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

// Saves three checkpoints whose values are ids 1, 2, 3 (a 2 MiB tensor: a dataset of its own).
std::string three_checkpoints() {
  const std::string dir = scratch_dir();
  auto v = Variable::create<float>(session(), {1 << 19}, Layout::block(0));
  Checkpoint ckpt(session(), {{"v", v}});
  CheckpointManager mgr(ckpt, dir);
  for (int id = 1; id <= 3; ++id) {
    fill(*v, id);
    mgr.save();
  }
  return dir;
}

void damage(const std::string& path, const std::string& how) {
  if (session().rank() == 0) {
    if (how == "truncate") {
      fs::resize_file(path, fs::file_size(path) / 2);
    } else if (how == "flip") {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
      f.put('\x7f');
      f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2 + 4096));
      f.put('\x01');
    } else {
      fs::remove(path);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

void expect_fallback(const std::string& how) {
  const std::string dir = three_checkpoints();
  damage(dir + "/ckpt-3.h5", how);
  auto v = Variable::create<float>(session(), {1 << 19}, Layout::block(0));
  Checkpoint ckpt(session(), {{"v", v}});
  CheckpointManager mgr(ckpt, dir);
  auto outcome = mgr.restore_or_initialize([] { FAIL() << "must not initialize"; });
  ASSERT_TRUE(outcome.path.has_value());
  EXPECT_EQ(*outcome.path, dir + "/ckpt-2.h5") << how;
  EXPECT_EQ(session().comm().allreduce_sum(count_mismatches(*v, 2)), 0) << how;
  EXPECT_EQ(ckpt.save_counter(), 2);
  if (how != "delete") {
    ASSERT_EQ(outcome.skipped.size(), 1u) << how;
    EXPECT_EQ(outcome.skipped[0].path, dir + "/ckpt-3.h5");
  } else {
    // A deleted file is dropped by the manager's recovery and reported there instead.
    EXPECT_EQ(mgr.recovery_notes().size(), 1u);
  }
}

TEST(Fallback, TruncatedNewest) {
  expect_fallback("truncate");
}
TEST(Fallback, BitFlippedNewest) {
  expect_fallback("flip");
}
TEST(Fallback, DeletedNewest) {
  expect_fallback("delete");
}

TEST(Fallback, NothingRestorableIsAnErrorOnEveryRank) {
  const std::string dir = three_checkpoints();
  for (int i = 1; i <= 3; ++i) damage(dir + "/ckpt-" + std::to_string(i) + ".h5", "truncate");
  auto v = Variable::create<float>(session(), {1 << 19}, Layout::block(0));
  Checkpoint ckpt(session(), {{"v", v}});
  CheckpointManager mgr(ckpt, dir);
  std::string text;
  try {
    mgr.restore_or_initialize([] { FAIL() << "must not initialize over damaged checkpoints"; });
  } catch (const Error& e) {
    text = e.what();
  }
  EXPECT_NE(text.find("none of the 3 checkpoints"), std::string::npos) << text;
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
}

TEST(Fallback, ShapeMismatchIsNotMistakenForDamage) {
  const std::string dir = three_checkpoints();
  auto v = Variable::create<float>(session(), {1 << 18}, Layout::block(0));
  Checkpoint ckpt(session(), {{"v", v}});
  CheckpointManager mgr(ckpt, dir);
  EXPECT_THROW(mgr.restore_or_initialize(), Error);
}

}  // namespace
}  // namespace cairn
