// SPDX-License-Identifier: Apache-2.0
// Plan once, reuse: saves of an unchanged graph reuse the previous plan (and say so in
// last_save()), yet write the values and opaque state of the moment; any change to the graph's
// objects, edges or slots plans again.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::plan_reuse {
namespace {

using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

struct Cursor {
  int64_t position = 0;
  std::vector<int32_t> seen;  // its length changes between saves: blob sizes and offsets move
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& position& seen;
  }
};

// Uneven shards in a dataset (above the 1 MiB pack threshold), a packed sharded tensor that
// ranks beyond 2 own nothing of, a replicated one, per-rank and global state. The replicated
// tensor's checksums and the global state's blob (checksum, size, offset) are in the global table,
// which rank 0 keeps with a reused plan: every save must write them anew.
struct Model {
  std::shared_ptr<Variable> big = Variable::create<float>(session(), {1031, 300}, Layout::block(0));
  std::shared_ptr<Variable> tiny = Variable::create<double>(session(), {2, 5}, Layout::block(0));
  std::shared_ptr<Variable> rep = Variable::create<float>(session(), {5}, Layout::replicated());
  std::shared_ptr<State<Cursor>> cursor = std::make_shared<State<Cursor>>(StateScope::kPerRank);
  std::shared_ptr<State<Cursor>> global = std::make_shared<State<Cursor>>(StateScope::kGlobal);
  std::shared_ptr<Module> module = std::make_shared<Module>();
  Model() {
    module->track("big", big);
    module->track("tiny", tiny);
    module->track("rep", rep);
    module->track("cursor", cursor);
    module->track("global", global);
  }
  void set(int id) {
    fill(*big, id);
    fill(*tiny, id + 1);
    fill(*rep, id + 2);
    cursor->value().position = id * 100 + session().rank();
    cursor->value().seen.assign(static_cast<std::size_t>(id + session().rank()), id);
    global->value().position = id;
    global->value().seen.assign(static_cast<std::size_t>(2 * id), -id);  // a global blob that grows
  }
  // Elements and state values that differ from set(id), over all ranks.
  int64_t mismatches(int id) const {
    int64_t bad = session().comm().allreduce_sum(
        (cursor->value().position != id * 100 + session().rank() ? 1 : 0) +
        (cursor->value().seen !=
                 std::vector<int32_t>(static_cast<std::size_t>(id + session().rank()), id)
             ? 1
             : 0) +
        (global->value().position != id ? 1 : 0) +
        (global->value().seen != std::vector<int32_t>(static_cast<std::size_t>(2 * id), -id) ? 1
                                                                                             : 0));
    return bad + global_mismatches(*big, id) + global_mismatches(*tiny, id + 1) +
           global_mismatches(*rep, id + 2);
  }
};

int64_t restored_mismatches(const std::string& path, int id) {
  Model fresh;
  Checkpoint reader(session(), {{"model", fresh.module}});
  reader.read(path).assert_consumed();
  return fresh.mismatches(id);
}

TEST(PlanReuse, AnUnchangedGraphReusesThePlanAndSavesTheValuesOfTheMoment) {
  const std::string dir = scratch_dir();
  Model m;
  Checkpoint ckpt(session(), {{"model", m.module}});
  m.set(1);
  ckpt.write(dir + "/a.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  m.set(2);
  const std::string second = ckpt.save(dir + "/ck");
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  m.set(3);
  ckpt.write(dir + "/c.h5");
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  EXPECT_EQ(restored_mismatches(dir + "/a.h5", 1), 0);
  EXPECT_EQ(restored_mismatches(second, 2), 0);
  EXPECT_EQ(restored_mismatches(dir + "/c.h5", 3), 0);
}

TEST(PlanReuse, ANewEdgeAReplacedChildOrNewSlotsPlanAgain) {
  const std::string dir = scratch_dir();
  Model m;
  Checkpoint ckpt(session(), {{"model", m.module}});
  m.set(1);
  ckpt.write(dir + "/a.h5");

  // A new edge.
  auto extra = Variable::create<float>(session(), {9}, Layout::block(0));
  fill(*extra, 40);
  m.module->track("extra", extra);
  ckpt.write(dir + "/b.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);

  // The same name, a new object of the same shape: its values, not the old buffer's.
  auto replacement = Variable::create<float>(session(), {1031, 300}, Layout::block(0));
  fill(*replacement, 50);
  m.module->track("big", replacement);
  m.big.reset();  // the old variable is gone: nothing may still point at its memory
  ckpt.write(dir + "/c.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  ckpt.write(dir + "/d.h5");
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  {
    auto big = Variable::create<float>(session(), {1031, 300}, Layout::block(0));
    auto module = std::make_shared<Module>();
    module->track("big", big);
    Checkpoint reader(session(), {{"model", module}});
    reader.read(dir + "/d.h5").expect_partial();
    EXPECT_EQ(global_mismatches(*big, 50), 0);
  }

  // Slots created after the last save.
  auto opt = std::make_shared<Adam>(session(), Adam::Options{});
  ckpt.root().track("optimizer", opt);
  ckpt.write(dir + "/e.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  opt->begin_step();
  opt->apply(extra, std::vector<double>(static_cast<std::size_t>(extra->local_elements()), 1.0));
  ckpt.write(dir + "/f.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  ckpt.write(dir + "/g.h5");
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  const std::vector<VariableInfo> saved = CheckpointReader(dir + "/g.h5").list_variables();
  int slots = 0;
  for (const VariableInfo& v : saved) slots += v.key.find(".OPTIMIZER_SLOT") != std::string::npos;
  EXPECT_EQ(slots, 2);  // m and v of `extra`
}

TEST(PlanReuse, AsynchronousSavesReuseThePlanAndStageTheValuesOfTheCall) {
  ASSERT_GE(session().thread_level(), MPI_THREAD_MULTIPLE);
  const std::string dir = scratch_dir();
  Model m;
  Checkpoint ckpt(session(), {{"model", m.module}});
  m.set(1);
  ckpt.write_async(dir + "/a.h5");
  ckpt.wait();
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  m.set(2);
  ckpt.write_async(dir + "/b.h5");
  m.set(3);  // after the call: must not reach b.h5
  ckpt.wait();
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  ckpt.write_async(dir + "/c.h5");
  ckpt.wait();
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  EXPECT_EQ(restored_mismatches(dir + "/a.h5", 1), 0);
  EXPECT_EQ(restored_mismatches(dir + "/b.h5", 2), 0);
  EXPECT_EQ(restored_mismatches(dir + "/c.h5", 3), 0);
}

TEST(PlanReuse, AFailedSaveForgetsThePlan) {
  const std::string dir = scratch_dir();
  Model m;
  Checkpoint ckpt(session(), {{"model", m.module}});
  m.set(1);
  ckpt.write(dir + "/a.h5");
  // A directory where the file should go: the save fails on every rank.
  if (session().rank() == 0) std::filesystem::create_directories(dir + "/taken.h5");
  session().comm().barrier();
  EXPECT_THROW(ckpt.write(dir + "/taken.h5"), Error);
  m.set(2);
  ckpt.write(dir + "/b.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  EXPECT_EQ(restored_mismatches(dir + "/b.h5", 2), 0);
}

// The reused plan remembers which nodes are optimizers and which are opaque state: an optimizer
// with slots, one without, and per-rank and global state must still be saved as they are at the
// moment of the reused save.
TEST(PlanReuse, AReusedPlanSavesTheSlotsAndStateOfTheMoment) {
  const std::string dir = scratch_dir();
  Model m;
  auto weights = Variable::create<float>(session(), {7}, Layout::block(0));  // ranks past 6: none
  m.module->track("weights", weights);
  auto adam = std::make_shared<Adam>(session(), Adam::Options{});
  auto sgd = std::make_shared<SGD>(SGD::Options{});
  Checkpoint ckpt(session(), {{"model", m.module}, {"adam", adam}, {"sgd", sgd}});
  const std::vector<double> gradient(static_cast<std::size_t>(weights->local_elements()), 0.5);
  auto step = [&](int id) {
    m.set(id);
    adam->begin_step();
    adam->apply(weights, gradient);
  };
  step(1);
  ckpt.write(dir + "/a.h5");
  EXPECT_FALSE(ckpt.last_save().plan_reused);
  step(2);
  ckpt.write(dir + "/b.h5");
  ASSERT_TRUE(ckpt.last_save().plan_reused);
  {
    Model fresh;  // the model's values and state; the optimizers are compared below
    Checkpoint restore(session(), {{"model", fresh.module}});
    restore.read(dir + "/b.h5").expect_partial();
    EXPECT_EQ(fresh.mismatches(2), 0);
  }
  // Each rank compares its own elements of every slot with what the reused plan wrote.
  const CheckpointReader reader(dir + "/b.h5");
  int64_t wrong = 0;
  int slots = 0;
  for (const Optimizer::Slot& slot : adam->slots()) {
    const std::string key =
        "model/weights/.OPTIMIZER_SLOT/adam/" + slot.name + "/.ATTRIBUTES/VARIABLE_VALUE";
    for (std::size_t i = 0; i < slot.value->local_boxes().size(); ++i) {
      const std::vector<float> saved = reader.load<float>(key, slot.value->local_boxes()[i]);
      const std::span<const float> live = std::as_const(*slot.value).local<float>(i);
      wrong += std::equal(saved.begin(), saved.end(), live.begin(), live.end()) ? 0 : 1;
    }
    ++slots;
  }
  EXPECT_EQ(slots, 2);  // m and v
  EXPECT_EQ(session().comm().allreduce_sum(wrong), 0);
}

}  // namespace
}  // namespace cairn::plan_reuse
