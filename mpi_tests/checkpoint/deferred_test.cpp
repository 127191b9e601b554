// SPDX-License-Identifier: Apache-2.0
// Deferred restoration: objects attached after restore() get their values on attach, from each
// rank alone; the newest restore wins; slot variables restore once variable and optimizer exist.
#include <gtest/gtest.h>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::global_mismatches;
using testing::session;

using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;

TEST(Deferred, ChildAttachedAfterRestoreIsRestoredOnAttachWithoutCollectives) {
  const std::string dir = scratch_dir();
  std::string path;
  {
    auto m = std::make_shared<Module>();
    auto dense = std::make_shared<Module>();
    auto kernel = Variable::create<float>(session(), {9, 4}, Layout::block(0));
    fill(*kernel, 31);
    dense->track("kernel", kernel);
    m->track("dense", dense);
    path = Checkpoint(session(), {{"model", m}}).write(dir + "/d.h5");
  }
  auto m = std::make_shared<Module>();
  Checkpoint ckpt(session(), {{"model", m}});
  auto status = ckpt.read(path);
  // Attach on one rank at a time, in reverse order: a collective here would deadlock.
  auto dense = std::make_shared<Module>();
  auto kernel = Variable::create<float>(session(), {9, 4}, Layout::block(1));  // another layout
  for (int turn = session().size() - 1; turn >= 0; --turn) {
    if (session().rank() == turn) {
      m->track("dense", dense);
      dense->track("kernel", kernel);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  EXPECT_EQ(global_mismatches(*kernel, 31), 0);
  status.assert_consumed();
}

TEST(Deferred, NewestRestoreWins) {
  const std::string dir = scratch_dir();
  auto make = [&](int id, const std::string& name) {
    auto m = std::make_shared<Module>();
    auto v = Variable::create<double>(session(), {6}, Layout::block(0));
    fill(*v, id);
    m->track("v", v);
    return Checkpoint(session(), {{"m", m}}).write(dir + "/" + name);
  };
  const std::string first = make(41, "first.h5");
  const std::string second = make(42, "second.h5");
  auto m = std::make_shared<Module>();
  Checkpoint ckpt(session(), {{"m", m}});
  auto s1 = ckpt.read(first);
  auto s2 = ckpt.read(second);
  auto v = Variable::create<double>(session(), {6}, Layout::replicated());
  m->track("v", v);
  EXPECT_EQ(global_mismatches(*v, 42), 0);
  s2.assert_consumed();
  s1.expect_partial();
}

TEST(Deferred, SlotsRestoreWhenBothVariableAndOptimizerExistInEitherOrder) {
  const std::string dir = scratch_dir();
  std::string path;
  {
    auto w = Variable::create<float>(session(), {8, 3}, Layout::block(0));
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    fill(*w, 50);
    fill(*opt->add_slot(w, "m"), 51);
    fill(*opt->add_slot(w, "v"), 52);
    opt->begin_step();
    opt->begin_step();
    path = Checkpoint(session(), {{"w", w}, {"opt", opt}}).write(dir + "/slots.h5");
  }
  {
    // Variable and optimizer exist before restore, slots are created lazily afterwards.
    auto w = Variable::create<float>(session(), {8, 3}, Layout::block(1));
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    Checkpoint ckpt(session(), {{"w", w}, {"opt", opt}});
    auto status = ckpt.read(path);
    EXPECT_EQ(global_mismatches(*w, 50), 0);
    EXPECT_EQ(opt->iterations(), 2);
    auto m = opt->add_slot(w, "m");
    auto v = opt->add_slot(w, "v");
    EXPECT_EQ(global_mismatches(*m, 51), 0);
    EXPECT_EQ(global_mismatches(*v, 52), 0);
    status.assert_consumed();
  }
  {
    // Slots exist before the restore: restored in the collective pass.
    auto w = Variable::create<float>(session(), {8, 3}, Layout::replicated());
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    auto m = opt->add_slot(w, "m");
    auto v = opt->add_slot(w, "v");
    Checkpoint ckpt(session(), {{"w", w}, {"opt", opt}});
    ckpt.read(path).assert_consumed();
    EXPECT_EQ(global_mismatches(*m, 51), 0);
    EXPECT_EQ(global_mismatches(*v, 52), 0);
  }
  {
    // The optimizer is attached after the restore, then the variable, then the slots.
    Checkpoint ckpt(session());
    auto status = ckpt.read(path);
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    ckpt.root().track("opt", opt);
    EXPECT_EQ(opt->iterations(), 2);
    auto w = Variable::create<float>(session(), {8, 3}, Layout::block(0));
    auto m = opt->add_slot(w, "m");  // before the variable is matched: nothing to restore yet
    ckpt.root().track("w", w);       // now the variable matches, and its existing slot with it
    EXPECT_EQ(global_mismatches(*w, 50), 0);
    EXPECT_EQ(global_mismatches(*m, 51), 0);
    auto v = opt->add_slot(w, "v");
    EXPECT_EQ(global_mismatches(*v, 52), 0);
    status.assert_consumed();
  }
}

}  // namespace
}  // namespace cairn
