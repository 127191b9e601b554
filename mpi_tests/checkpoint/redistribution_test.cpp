// SPDX-License-Identifier: Apache-2.0
// N -> M restores with layout changes. Inside one MPI job of P ranks, a checkpoint is saved by the
// first N ranks (a sub-communicator) and restored by the first M ranks, for every N, M <= P.
#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// The first `n` ranks of the world, or MPI_COMM_NULL on the others. Collective over the world.
class SubComm {
 public:
  explicit SubComm(int n) {
    MPI_Comm_split(MPI_COMM_WORLD, world_rank() < n ? 0 : MPI_UNDEFINED, world_rank(), &comm_);
  }
  ~SubComm() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  SubComm(const SubComm&) = delete;
  SubComm& operator=(const SubComm&) = delete;
  bool member() const { return comm_ != MPI_COMM_NULL; }
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

using LayoutFor = std::function<Layout(int nranks)>;

struct Case {
  const char* name;
  LayoutFor save;
  LayoutFor restore;
};

Layout grid_for(int n) {
  if (n == 4) return Layout::grid({2, 2});
  return Layout::grid({1, n});
}

// Uneven explicit boxes: rank 0 takes a thin slab, the last rank the rest, others nothing.
Layout explicit_for(int n) {
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(n));
  if (n == 1) {
    boxes[0] = {Box{{0, 0}, {13, 7}}};
  } else {
    boxes[0] = {Box{{0, 0}, {2, 7}}, Box{{2, 0}, {3, 3}}};
    boxes[static_cast<std::size_t>(n - 1)] = {Box{{2, 3}, {3, 4}}, Box{{5, 0}, {8, 7}}};
  }
  return Layout::explicit_boxes(boxes);
}

const Case kCases[] = {
    {"block0->block0", [](int) { return Layout::block(0); }, [](int) { return Layout::block(0); }},
    {"block0->block1", [](int) { return Layout::block(0); }, [](int) { return Layout::block(1); }},
    {"block1->replicated", [](int) { return Layout::block(1); },
     [](int) { return Layout::replicated(); }},
    {"replicated->block0", [](int) { return Layout::replicated(); },
     [](int) { return Layout::block(0); }},
    {"grid->block1", grid_for, [](int) { return Layout::block(1); }},
    {"block0->grid", [](int) { return Layout::block(0); }, grid_for},
    {"explicit->block0", explicit_for, [](int) { return Layout::block(0); }},
    {"block1->explicit", [](int) { return Layout::block(1); }, explicit_for},
};

struct Storage {
  const char* name;
  SessionOptions options;
};

const Storage kStorages[] = {
    {"datasets", {.pack_threshold_bytes = 0, .piece_bytes = 40}},
    {"packed", {.pack_threshold_bytes = 1 << 20, .piece_bytes = 1 << 20}},
    {"collective",
     {.write_mode = IoMode::kCollective, .pack_threshold_bytes = 100, .piece_bytes = 40}},
};

TEST(Redistribution, EverySaveAndRestoreRankCountWithLayoutChanges) {
  const int world = world_size();
  const Shape shape{13, 7};
  for (const Storage& storage : kStorages) {
    for (const Case& c : kCases) {
      const std::string dir = scratch_dir();
      for (int n = 1; n <= world; ++n) {
        const std::string path = dir + "/" + std::to_string(n) + ".h5";
        SubComm savers(n);
        if (savers.member()) {
          Session s(savers.get(), storage.options);
          auto v = std::make_shared<Variable>(s, DType::kF32, shape, c.save(n));
          fill(*v, 17);
          Checkpoint(s, {{"v", v}}).write(path);
        }
        for (int m = 1; m <= world; ++m) {
          SubComm restorers(m);
          if (!restorers.member()) continue;
          Session s(restorers.get(), storage.options);
          auto v = std::make_shared<Variable>(s, DType::kF32, shape, c.restore(m));
          Checkpoint(s, {{"v", v}}).read(path).assert_consumed();
          const int64_t bad = s.comm().allreduce_sum(count_mismatches(*v, 17));
          EXPECT_EQ(bad, 0) << storage.name << " " << c.name << " saved on " << n << " restored on "
                            << m;
        }
      }
    }
  }
}

TEST(Redistribution, ThreeDimensionalGridToBlockAndRanksOwningNothing) {
  const int world = world_size();
  const std::string dir = scratch_dir();
  const Shape shape{2, 5, 3};  // axis 0 has 2 slices: with more ranks some own nothing
  const std::string path = dir + "/3d.h5";
  {
    Session s(MPI_COMM_WORLD, {.pack_threshold_bytes = 0, .piece_bytes = 24});
    auto v = std::make_shared<Variable>(s, DType::kI64, shape, Layout::block(0));
    if (s.rank() >= 2) {
      EXPECT_TRUE(v->local_boxes().empty());
    }
    fill(*v, 23);
    Checkpoint(s, {{"t", v}}).write(path);
  }
  for (int m = 1; m <= world; ++m) {
    SubComm restorers(m);
    if (!restorers.member()) continue;
    Session s(restorers.get());
    auto v = std::make_shared<Variable>(s, DType::kI64, shape, Layout::block(2));
    Checkpoint(s, {{"t", v}}).read(path).assert_consumed();
    EXPECT_EQ(s.comm().allreduce_sum(count_mismatches(*v, 23)), 0) << "restored on " << m;
  }
}

TEST(Redistribution, PerRankStateKeepsRankValuesAndReportsRanksWithoutOne) {
  const int world = world_size();
  const std::string dir = scratch_dir();
  const std::string path = dir + "/state.h5";
  const int savers_n = (world + 1) / 2;
  {
    SubComm savers(savers_n);
    if (savers.member()) {
      Session s(savers.get());
      auto pos = std::make_shared<State<int>>(StateScope::kPerRank, 500 + s.rank());
      Checkpoint(s, {{"pos", pos}}).write(path);
    }
  }
  Session s(MPI_COMM_WORLD);
  auto pos = std::make_shared<State<int>>(StateScope::kPerRank, -1);
  RestoreStatus status = Checkpoint(s, {{"pos", pos}}).read(path);
  if (s.rank() < savers_n) {
    EXPECT_EQ(pos->value(), 500 + s.rank());
  } else {
    EXPECT_EQ(pos->value(), -1);
  }
  if (savers_n == world) {
    status.assert_consumed();
  } else {
    // Ranks beyond the saving job have no value: a global verdict, the same on every rank.
    try {
      status.assert_consumed();
      FAIL() << "expected a failed verdict";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pos/.ATTRIBUTES/STATE"), std::string::npos) << e.what();
    }
    status.expect_partial();
  }
}

}  // namespace
}  // namespace cairn
