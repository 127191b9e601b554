// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "cairn/tensor/layout.hpp"
#include "world.hpp"

namespace cairn {
namespace {

using tensor_tests::world_rank;
using tensor_tests::world_size;

// The validation error for `layout`, or a test failure if there is none.
Error validation_error(const Layout& layout, const Shape& shape, int nranks,
                       const std::string& key = "model/w") {
  try {
    layout.validate(shape, nranks, key);
  } catch (const Error& e) {
    EXPECT_EQ(e.context().key, key) << e.what();
    return e;
  }
  ADD_FAILURE() << layout.describe() << " on " << shape_to_string(shape) << " validated";
  return Error(ErrorCode::kInvalidArgument, "no error");
}

bool mentions(const Error& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

// Every element of `shape` is owned by exactly one of the ranks' boxes (brute force).
void expect_exact_cover(const Layout& layout, const Shape& shape, int nranks) {
  std::vector<int> owners(shape_volume(shape), 0);
  for (int rank = 0; rank < nranks; ++rank) {
    for (const Box& box : layout.boxes_for(rank, nranks, shape)) {
      ASSERT_TRUE(inside_shape(box, shape)) << box.to_string();
      ASSERT_FALSE(box.empty()) << "rank " << rank << " got an empty box";
      const int64_t n = box.volume();
      for (int64_t i = 0; i < n; ++i) {
        int64_t rest = i, index = 0, stride = 1;
        for (std::size_t d = shape.size(); d-- > 0;) {
          index += (box.offset[d] + rest % box.count[d]) * stride;
          rest /= box.count[d];
          stride *= shape[d];
        }
        ++owners[index];
      }
    }
  }
  for (std::size_t i = 0; i < owners.size(); ++i) ASSERT_EQ(owners[i], 1) << "element " << i;
}

TEST(BlockRange, FirstPartsGetTheRemainder) {
  EXPECT_EQ(block_range(10, 4, 0), (std::pair<int64_t, int64_t>{0, 3}));
  EXPECT_EQ(block_range(10, 4, 1), (std::pair<int64_t, int64_t>{3, 6}));
  EXPECT_EQ(block_range(10, 4, 2), (std::pair<int64_t, int64_t>{6, 8}));
  EXPECT_EQ(block_range(10, 4, 3), (std::pair<int64_t, int64_t>{8, 10}));
  EXPECT_EQ(block_range(2, 4, 3), (std::pair<int64_t, int64_t>{2, 2}));
  for (int64_t extent = 0; extent < 30; ++extent) {
    for (int parts = 1; parts < 9; ++parts) {
      int64_t next = 0;
      for (int index = 0; index < parts; ++index) {
        const auto [begin, end] = block_range(extent, parts, index);
        ASSERT_EQ(begin, next);
        ASSERT_GE(end - begin, extent / parts);
        ASSERT_LE(end - begin, extent / parts + 1);
        next = end;
      }
      ASSERT_EQ(next, extent);
    }
  }
  EXPECT_THROW(block_range(4, 0, 0), Error);
  EXPECT_THROW(block_range(4, 2, 2), Error);
}

TEST(Layout, Describe) {
  EXPECT_EQ(Layout::replicated().describe(), "replicated");
  EXPECT_EQ(Layout::block().describe(), "block(axis=0)");
  EXPECT_EQ(Layout::block(2).describe(), "block(axis=2)");
  EXPECT_EQ(Layout::grid({2, 2}).describe(), "grid(2x2)");
  EXPECT_EQ(
      Layout::explicit_boxes({{Box{{0}, {1}}, Box{{1}, {1}}}, {}, {Box{{2}, {2}}}}).describe(),
      "explicit(3 boxes)");
}

TEST(Layout, ReplicatedGivesEveryRankTheWholeTensor) {
  const Layout layout = Layout::replicated();
  const Shape shape{3, 5};
  layout.validate(shape, world_size(), "k");
  EXPECT_EQ(layout.boxes_for(world_rank(), world_size(), shape),
            std::vector<Box>{Box::whole(shape)});
  EXPECT_EQ(layout.boxes_for(0, 1, {}), std::vector<Box>{Box{}});
}

TEST(Layout, UnevenBlocksCoverTheTensor) {
  const Shape shape{10, 3};
  for (int nranks = 1; nranks <= 12; ++nranks) {
    SCOPED_TRACE("nranks " + std::to_string(nranks));
    Layout::block(0).validate(shape, nranks, "k");
    Layout::block(1).validate(shape, nranks, "k");
    expect_exact_cover(Layout::block(0), shape, nranks);
    expect_exact_cover(Layout::block(1), shape, nranks);
  }
  EXPECT_EQ(Layout::block(1).boxes_for(1, 2, {4, 5}), std::vector<Box>{(Box{{0, 3}, {4, 2}})});
  EXPECT_EQ(Layout::block(0).boxes_for(3, 4, {10, 3}), std::vector<Box>{(Box{{8, 0}, {2, 3}})});
}

TEST(Layout, RanksBeyondTheExtentOwnNothing) {
  const Layout layout = Layout::block();
  layout.validate({2, 8}, 4, "k");
  EXPECT_EQ(layout.boxes_for(0, 4, {2, 8}).size(), 1u);
  EXPECT_EQ(layout.boxes_for(1, 4, {2, 8}).size(), 1u);
  EXPECT_TRUE(layout.boxes_for(2, 4, {2, 8}).empty());
  EXPECT_TRUE(layout.boxes_for(3, 4, {2, 8}).empty());
  // On the real job, too.
  const auto mine = layout.boxes_for(world_rank(), world_size(), {2, 8});
  EXPECT_EQ(mine.size(), world_rank() < 2 ? 1u : 0u);
}

TEST(Layout, ScalarBlockBelongsToRankZero) {
  const Layout layout = Layout::block();
  layout.validate({}, 3, "k");
  EXPECT_EQ(layout.boxes_for(0, 3, {}), std::vector<Box>{Box{}});
  EXPECT_TRUE(layout.boxes_for(1, 3, {}).empty());
  EXPECT_TRUE(layout.boxes_for(2, 3, {}).empty());
}

TEST(Layout, BlockAxisOutOfRange) {
  const Error e = validation_error(Layout::block(2), {4, 4}, 2);
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(mentions(e, "block(axis=2)")) << e.what();
  EXPECT_THROW(Layout::block(-1).boxes_for(0, 1, {4}), Error);
  // Even for a scalar, which ignores the axis: the file stores it, and readers refuse it.
  const Error scalar = validation_error(Layout::block(-1), {}, 2);
  EXPECT_EQ(scalar.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(mentions(scalar, "negative axis")) << scalar.what();
}

TEST(Layout, GridIsRowMajorOverTheProcessGrid) {
  const Layout layout = Layout::grid({2, 2});
  const Shape shape{5, 7, 3};
  layout.validate(shape, 4, "k");
  expect_exact_cover(layout, shape, 4);
  EXPECT_EQ(layout.boxes_for(0, 4, shape), std::vector<Box>{(Box{{0, 0, 0}, {3, 4, 3}})});
  EXPECT_EQ(layout.boxes_for(1, 4, shape), std::vector<Box>{(Box{{0, 4, 0}, {3, 3, 3}})});
  EXPECT_EQ(layout.boxes_for(2, 4, shape), std::vector<Box>{(Box{{3, 0, 0}, {2, 4, 3}})});
  EXPECT_EQ(layout.boxes_for(3, 4, shape), std::vector<Box>{(Box{{3, 4, 0}, {2, 3, 3}})});

  // Grids with ranks that own nothing, and 3-D grids.
  expect_exact_cover(Layout::grid({3, 2}), {2, 5}, 6);
  EXPECT_TRUE(Layout::grid({3, 2}).boxes_for(4, 6, {2, 5}).empty());
  expect_exact_cover(Layout::grid({2, 1, 3}), {4, 4, 7}, 6);
}

TEST(Layout, GridMustMatchTheJob) {
  const Error wrong_count = validation_error(Layout::grid({2, 2}), {8, 8}, 3);
  EXPECT_EQ(wrong_count.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(mentions(wrong_count, "grid(2x2)")) << wrong_count.what();
  EXPECT_TRUE(mentions(wrong_count, "3 ranks")) << wrong_count.what();
  const Error too_many_axes = validation_error(Layout::grid({1, 1, 1}), {8, 8}, 1);
  EXPECT_TRUE(mentions(too_many_axes, "grid(1x1x1)")) << too_many_axes.what();
  EXPECT_THROW(Layout::grid({2, 0}), Error);
}

TEST(Layout, ExplicitBoxesThatTileTheTensorValidate) {
  const Layout layout = Layout::explicit_boxes(
      {{Box{{0, 0}, {2, 4}}}, {Box{{2, 0}, {2, 1}}, Box{{2, 1}, {2, 3}}}, {}});
  layout.validate({4, 4}, 3, "k");
  EXPECT_EQ(layout.boxes_for(1, 3, {4, 4}).size(), 2u);
  EXPECT_TRUE(layout.boxes_for(2, 3, {4, 4}).empty());
}

TEST(Layout, OverlapNamesBothRanksAndBoxes) {
  const Layout layout = Layout::explicit_boxes({{Box{{0}, {4}}}, {Box{{2}, {6}}}});
  const Error e = validation_error(layout, {8}, 2);
  EXPECT_EQ(e.code(), ErrorCode::kShardMismatch);
  EXPECT_TRUE(mentions(e, "rank 0's box [0:4]")) << e.what();
  EXPECT_TRUE(mentions(e, "rank 1's box [2:8]")) << e.what();
  EXPECT_TRUE(mentions(e, "[2:4]")) << e.what();
  EXPECT_TRUE(mentions(e, "key model/w")) << e.what();
}

TEST(Layout, GapNamesTheFirstUncoveredElement) {
  // Everything but element (2, 3).
  const Layout layout =
      Layout::explicit_boxes({{Box{{0, 0}, {2, 4}}}, {Box{{2, 0}, {1, 3}}}, {Box{{3, 0}, {1, 4}}}});
  const Error e = validation_error(layout, {4, 4}, 3);
  EXPECT_EQ(e.code(), ErrorCode::kShardMismatch);
  EXPECT_TRUE(mentions(e, "no rank owns element [2, 3]")) << e.what();
}

TEST(Layout, BoxOutsideTheShapeIsNamed) {
  const Layout layout = Layout::explicit_boxes({{Box{{0, 0}, {4, 4}}}, {Box{{4, 0}, {1, 4}}}});
  const Error e = validation_error(layout, {4, 4}, 2);
  EXPECT_EQ(e.code(), ErrorCode::kShardMismatch);
  EXPECT_TRUE(mentions(e, "rank 1's box [4:5, 0:4] lies outside shape [4, 4]")) << e.what();
  const Error wrong_rank = validation_error(Layout::explicit_boxes({{Box{{0}, {4}}}}), {4, 4}, 1);
  EXPECT_TRUE(mentions(wrong_rank, "rank 0's box [0:4]")) << wrong_rank.what();
}

TEST(Layout, ExplicitBoxesMustListEveryRank) {
  const Layout layout = Layout::explicit_boxes({{Box{{0}, {4}}}, {Box{{4}, {4}}}});
  const Error e = validation_error(layout, {8}, 3);
  EXPECT_EQ(e.code(), ErrorCode::kShardMismatch);
  EXPECT_TRUE(mentions(e, "2 ranks")) << e.what();
}

TEST(Layout, NegativeExtentsAreRejectedWithTheKey) {
  const Error e = validation_error(Layout::replicated(), {4, -2}, 1);
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(mentions(e, "[4, -2]")) << e.what();
}

// Brute force: the first element, in row-major order, that no box contains.
std::optional<Shape> first_uncovered_element(const std::vector<Box>& boxes, const Shape& shape) {
  const int64_t n = shape_volume(shape);
  Shape coord(shape.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i;
    for (std::size_t d = shape.size(); d-- > 0;) {
      coord[d] = rest % shape[d];
      rest /= shape[d];
    }
    const Box element{coord, Shape(shape.size(), 1)};
    bool covered = false;
    for (const Box& box : boxes) covered = covered || contains(box, element);
    if (!covered) return coord;
  }
  return std::nullopt;
}

TEST(Layout, RandomGapsAndOverlapsAreFound) {
  std::mt19937_64 random(7 + static_cast<uint64_t>(world_rank()));
  for (int trial = 0; trial < 200; ++trial) {
    const int rank = std::uniform_int_distribution<int>(1, 3)(random);
    Shape shape(rank);
    for (auto& extent : shape) extent = std::uniform_int_distribution<int64_t>(1, 6)(random);
    // Tile the tensor with split_box pieces and deal them to the ranks.
    const int64_t max_bytes = std::uniform_int_distribution<int64_t>(1, 40)(random);
    std::vector<Box> pieces = split_box(Box::whole(shape), 1, max_bytes);
    const int nranks = std::uniform_int_distribution<int>(1, 5)(random);
    const auto deal = [&](const std::vector<Box>& boxes) {
      std::vector<std::vector<Box>> per_rank(nranks);
      for (std::size_t i = 0; i < boxes.size(); ++i) per_rank[i % nranks].push_back(boxes[i]);
      return Layout::explicit_boxes(per_rank);
    };
    SCOPED_TRACE("shape " + shape_to_string(shape) + " pieces " + std::to_string(pieces.size()));
    ASSERT_NO_THROW(deal(pieces).validate(shape, nranks, "k"));

    // Duplicating a piece creates an overlap.
    std::vector<Box> doubled = pieces;
    doubled.push_back(pieces[random() % pieces.size()]);
    const Error overlap = validation_error(deal(doubled), shape, nranks, "k");
    ASSERT_TRUE(mentions(overlap, "overlap")) << overlap.what();

    // Dropping a piece leaves a gap whose first element must be reported.
    std::vector<Box> holed = pieces;
    holed.erase(holed.begin() + static_cast<std::ptrdiff_t>(random() % holed.size()));
    const auto expected = first_uncovered_element(holed, shape);
    ASSERT_TRUE(expected.has_value());
    const Error gap = validation_error(deal(holed), shape, nranks, "k");
    ASSERT_TRUE(mentions(gap, "no rank owns element " + shape_to_string(*expected))) << gap.what();
  }
}

}  // namespace
}  // namespace cairn
