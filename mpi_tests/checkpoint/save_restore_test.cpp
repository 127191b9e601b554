// SPDX-License-Identifier: Apache-2.0
// Save/write/read/restore semantics, save_counter, latest_checkpoint, shared objects, cycles,
// key escaping and opaque state.
#include <gtest/gtest.h>
#include <omp.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::global_mismatches;
using testing::session;

using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;
using testing::zero;

struct Loader {
  int64_t position = 0;
  std::vector<uint32_t> rng;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& position& rng;
  }
};

TEST(SaveRestore, SaveNumbersPathsAndRestoreRoundTripsValues) {
  const std::string dir = scratch_dir();
  auto w = Variable::create<float>(session(), {7, 5}, Layout::block(0));
  auto b = Variable::create<double>(session(), {3}, Layout::replicated());
  auto model = std::make_shared<Module>();
  model->track("w", w);
  model->track("b", b);
  Checkpoint ckpt(session(), {{"model", model}});
  fill(*w, 1);
  fill(*b, 2);
  EXPECT_EQ(ckpt.save_counter(), 0);
  const std::string p1 = ckpt.save(dir + "/ckpt");
  EXPECT_EQ(p1, dir + "/ckpt-1.h5");
  EXPECT_EQ(ckpt.save_counter(), 1);
  const std::string p2 = ckpt.save(dir + "/ckpt");
  EXPECT_EQ(p2, dir + "/ckpt-2.h5");
  EXPECT_EQ(latest_checkpoint(session(), dir), p2);
  EXPECT_EQ(latest_checkpoint(dir), p2);

  zero(*w);
  zero(*b);
  auto w2 = Variable::create<float>(session(), {7, 5}, Layout::block(0));
  auto b2 = Variable::create<double>(session(), {3}, Layout::replicated());
  auto model2 = std::make_shared<Module>();
  model2->track("w", w2);
  model2->track("b", b2);
  Checkpoint fresh(session(), {{"model", model2}});
  fresh.restore(p1).assert_consumed();
  EXPECT_EQ(fresh.save_counter(), 1);
  EXPECT_EQ(global_mismatches(*w2, 1), 0);
  EXPECT_EQ(global_mismatches(*b2, 2), 0);
}

TEST(SaveRestore, WriteTouchesNeitherCounterNorStateFile) {
  const std::string dir = scratch_dir();
  auto v = Variable::create<int32_t>(session(), {10}, Layout::block(0));
  fill(*v, 3);
  Checkpoint ckpt(session(), {{"v", v}});
  EXPECT_EQ(ckpt.write(dir + "/plain.h5"), dir + "/plain.h5");
  EXPECT_EQ(ckpt.save_counter(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/" + kStateFileName));
  EXPECT_EQ(latest_checkpoint(session(), dir), std::nullopt);
  zero(*v);
  ckpt.read(dir + "/plain.h5").assert_consumed();
  EXPECT_EQ(global_mismatches(*v, 3), 0);
}

TEST(SaveRestore, ReadDoesNotRestoreSaveCounterButRestoreDoes) {
  const std::string dir = scratch_dir();
  auto v = Variable::create<float>(session(), {4}, Layout::replicated());
  Checkpoint a(session(), {{"v", v}});
  a.save(dir + "/c");
  a.save(dir + "/c");
  const std::string p3 = a.save(dir + "/c");
  Checkpoint b(session(), {{"v", v}});
  b.read(p3);
  EXPECT_EQ(b.save_counter(), 0);
  b.restore(p3);
  EXPECT_EQ(b.save_counter(), 3);
  // The next save continues the numbering of the restored counter.
  EXPECT_EQ(b.save(dir + "/c"), dir + "/c-4.h5");
}

TEST(SaveRestore, SharedObjectIsSavedOnceAndRestoredThroughBothPaths) {
  const std::string dir = scratch_dir();
  auto shared = Variable::create<float>(session(), {6, 2}, Layout::block(0));
  auto left = std::make_shared<Module>();
  auto right = std::make_shared<Module>();
  left->track("kernel", shared);
  right->track("kernel", shared);
  fill(*shared, 9);
  Checkpoint ckpt(session(), {{"left", left}, {"right", right}});
  const std::string path = ckpt.write(dir + "/shared.h5");
  if (session().rank() == 0) {
    CheckpointReader reader(path);
    auto vars = reader.list_variables();
    ASSERT_EQ(vars.size(), 1u);
    EXPECT_EQ(vars[0].key, "left/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  }
  zero(*shared);
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*shared, 9), 0);
}

TEST(SaveRestore, CyclesAreAllowed) {
  const std::string dir = scratch_dir();
  auto a = std::make_shared<Module>();
  auto b = std::make_shared<Module>();
  auto v = Variable::create<double>(session(), {5}, Layout::block(0));
  a->track("b", b);
  b->track_weak("a", a);  // back edge closes the cycle without leaking
  b->track("v", v);
  fill(*v, 4);
  Checkpoint ckpt(session(), {{"a", a}});
  const std::string path = ckpt.write(dir + "/cycle.h5");
  zero(*v);
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*v, 4), 0);
}

TEST(SaveRestore, NamesWithSlashesAndDotsAreEscaped) {
  const std::string dir = scratch_dir();
  auto v = Variable::create<float>(session(), {3}, Layout::replicated());
  auto m = std::make_shared<Module>();
  m->track("a/b", v);
  auto dots = Variable::create<float>(session(), {2}, Layout::replicated());
  m->track("..", dots);
  fill(*v, 5);
  fill(*dots, 6);
  Checkpoint ckpt(session(), {{"x.y", m}});
  const std::string path = ckpt.write(dir + "/escape.h5");
  if (session().rank() == 0) {
    CheckpointReader reader(path);
    std::vector<std::string> keys;
    for (const auto& info : reader.list_variables()) keys.push_back(info.key);
    EXPECT_EQ(keys, (std::vector<std::string>{"x..y/..../.ATTRIBUTES/VARIABLE_VALUE",
                                              "x..y/a.Sb/.ATTRIBUTES/VARIABLE_VALUE"}));
  }
  zero(*v);
  zero(*dots);
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*v, 5), 0);
  EXPECT_EQ(global_mismatches(*dots, 6), 0);
}

TEST(SaveRestore, PerRankAndGlobalStateRoundTrip) {
  const std::string dir = scratch_dir();
  const int rank = session().rank();
  auto loader = std::make_shared<State<Loader>>(StateScope::kPerRank);
  loader->value().position = 1000 + rank;
  loader->value().rng = {static_cast<uint32_t>(rank), 7u, 11u};
  auto epoch = std::make_shared<State<int64_t>>(StateScope::kGlobal, int64_t{42});
  Checkpoint ckpt(session(), {{"loader", loader}, {"epoch", epoch}});
  const std::string path = ckpt.save(dir + "/s");
  loader->value() = {};
  epoch->value() = 0;
  ckpt.restore(path).assert_consumed();
  EXPECT_EQ(loader->value().position, 1000 + rank);
  EXPECT_EQ(loader->value().rng, (std::vector<uint32_t>{static_cast<uint32_t>(rank), 7u, 11u}));
  EXPECT_EQ(epoch->value(), 42);
}

TEST(SaveRestore, EveryDtypeRoundTrips) {
  const std::string dir = scratch_dir();
  const DType all[] = {DType::kF16, DType::kBF16, DType::kF32, DType::kF64, DType::kI8,
                       DType::kI16, DType::kI32,  DType::kI64, DType::kU8,  DType::kU16,
                       DType::kU32, DType::kU64,  DType::kBool};
  // Small thresholds: odd ids are packed, even ones get datasets cut into several pieces.
  Session small(MPI_COMM_WORLD, {.pack_threshold_bytes = 64, .piece_bytes = 48});
  std::vector<std::shared_ptr<Variable>> vars;
  auto m = std::make_shared<Module>();
  int id = 100;
  for (DType d : all) {
    const int64_t rows = (id % 2) ? 3 : 61;
    auto v = std::make_shared<Variable>(small, d, Shape{rows, 3}, Layout::block(0));
    fill(*v, id++);
    m->track(std::string(dtype_name(d)), v);
    vars.push_back(v);
  }
  Checkpoint ckpt(small, {{"m", m}});
  const std::string path = ckpt.write(dir + "/dtypes.h5");
  for (auto& v : vars) zero(*v);
  ckpt.read(path).assert_consumed();
  id = 100;
  for (auto& v : vars) EXPECT_EQ(global_mismatches(*v, id++), 0) << dtype_name(v->dtype());
}

TEST(SaveRestore, LatestCheckpointIsNulloptWithoutStateFileAndErrorWhenDamaged) {
  const std::string dir = scratch_dir();
  EXPECT_EQ(latest_checkpoint(session(), dir), std::nullopt);
  if (session().rank() == 0) std::ofstream(dir + "/" + kStateFileName) << "{ not json";
  MPI_Barrier(MPI_COMM_WORLD);
  try {
    latest_checkpoint(session(), dir);
    FAIL() << "a damaged state file must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find(kStateFileName), std::string::npos) << e.what();
  }
}

TEST(SaveRestore, SaveOfGraphThatDiffersAcrossRanksFailsEverywhere) {
  if (session().size() < 2) GTEST_SKIP() << "needs two ranks";
  const std::string dir = scratch_dir();
  auto m = std::make_shared<Module>();
  const int64_t rows = session().rank() == 1 ? 5 : 4;
  m->track("v", Variable::create<float>(session(), {rows}, Layout::replicated()));
  Checkpoint ckpt(session(), {{"m", m}});
  try {
    ckpt.save(dir + "/bad");
    FAIL() << "expected a shard mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kShardMismatch);
    EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad-1.h5"));
  EXPECT_EQ(latest_checkpoint(session(), dir), std::nullopt);
}

// Many packed bytes on a rank, with OpenMP threads to spare: the packed pieces are hashed in a
// parallel pass before the writes instead of in the packing loop (src/checkpoint/save.cpp), and
// the restore verifies every piece against those checksums. 64 MiB per rank, so at most 4 ranks.
TEST(SaveRestore, ManyPackedBytesWithThreadsToSpareAreHashedBeforeTheWrites) {
  if (session().size() > 4) GTEST_SKIP() << "64 MiB per rank: run at 1 to 4 ranks";
  const std::string dir = scratch_dir();
  // Four threads for the save, the process's own count back afterwards even if an assertion
  // ends the test early (the tests after it run in the same process).
  struct Threads {
    int before = omp_get_max_threads();
    Threads() { omp_set_num_threads(4); }
    ~Threads() { omp_set_num_threads(before); }
  };
  std::optional<Threads> four(std::in_place);
  SessionOptions options;
  options.pack_threshold_bytes = int64_t{128} << 20;  // every tensor below is packed
  const Session s(MPI_COMM_WORLD, options);
  auto build = [&] {
    auto model = std::make_shared<Module>();
    // 1 MiB per rank each, uneven by a few elements; the last one only rank 0 owns.
    for (int i = 0; i < 65; ++i)
      model->track(
          "t" + std::to_string(i),
          Variable::create<float>(s, {s.size() * int64_t{262144} + i % 3}, Layout::block(0)));
    model->track("tiny", Variable::create<double>(s, {1}, Layout::block(0)));
    return model;
  };
  auto saved = build();
  int64_t local_bytes = 0;
  for (std::size_t i = 0; i < saved->edges().size(); ++i) {
    auto& v = dynamic_cast<Variable&>(*saved->edges()[i].strong);
    fill(v, static_cast<int64_t>(i));
    local_bytes += static_cast<int64_t>(v.bytes().size());
  }
  ASSERT_GE(local_bytes, int64_t{64} << 20);
  ASSERT_GE(omp_get_max_threads(), 4);
  Checkpoint(s, {{"model", saved}}).write(dir + "/packed.h5");
  four.reset();

  auto restored = build();
  Checkpoint(s, {{"model", restored}}).read(dir + "/packed.h5").assert_consumed();
  int64_t wrong = 0;
  for (std::size_t i = 0; i < restored->edges().size(); ++i)
    wrong += count_mismatches(dynamic_cast<const Variable&>(*restored->edges()[i].strong),
                              static_cast<int64_t>(i));
  EXPECT_EQ(s.comm().allreduce_sum(wrong), 0);
}

// Restores match children by name: a graph whose edges are in another order than the saved one
// (some at the saved position, some not, one new) gets every value under its own name.
TEST(SaveRestore, ChildrenTrackedInAnotherOrderRestoreByName) {
  const std::string dir = scratch_dir();
  const std::vector<std::string> saved_order{"a", "b", "c", "d"};
  auto saved = std::make_shared<Module>();
  for (std::size_t i = 0; i < saved_order.size(); ++i) {
    auto v = Variable::create<float>(session(), {5, 3}, Layout::block(0));
    fill(*v, static_cast<int64_t>(10 + i));
    saved->track(saved_order[i], v);
  }
  Checkpoint(session(), {{"model", saved}}).write(dir + "/order.h5");

  // "a" and "d" stay at their saved positions, "c" and "b" swap, "new" is not in the checkpoint.
  const std::vector<std::string> live_order{"a", "c", "b", "d", "new"};
  auto live = std::make_shared<Module>();
  for (const std::string& name : live_order)
    live->track(name, Variable::create<float>(session(), {5, 3}, Layout::block(0)));
  Checkpoint(session(), {{"model", live}})
      .read(dir + "/order.h5")
      .expect_partial();  // "new" is not in the checkpoint; the values say what matched
  for (std::size_t i = 0; i < saved_order.size(); ++i)
    EXPECT_EQ(global_mismatches(dynamic_cast<const Variable&>(*live->child(saved_order[i])),
                                static_cast<int64_t>(10 + i)),
              0)
        << saved_order[i];
}

}  // namespace
}  // namespace cairn
