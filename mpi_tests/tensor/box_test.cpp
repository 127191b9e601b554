// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>

#include "cairn/core/error.hpp"
#include "cairn/tensor/box.hpp"
#include "world.hpp"

namespace cairn {
namespace {

using tensor_tests::world_rank;

TEST(Box, VolumeAndEmptiness) {
  EXPECT_EQ(Box{}.volume(), 1);  // a scalar
  EXPECT_FALSE(Box{}.empty());
  EXPECT_EQ((Box{{0, 0}, {3, 4}}.volume()), 12);
  EXPECT_EQ((Box{{5, 1}, {0, 4}}.volume()), 0);
  EXPECT_TRUE((Box{{5, 1}, {0, 4}}.empty()));
  EXPECT_EQ(Box::whole({2, 3, 4}), (Box{{0, 0, 0}, {2, 3, 4}}));
}

TEST(Box, ToString) {
  EXPECT_EQ((Box{{0, 2}, {4, 6}}.to_string()), "[0:4, 2:8]");
  EXPECT_EQ(Box{}.to_string(), "[]");
  EXPECT_EQ((Box{{7}, {0}}.to_string()), "[7:7]");
  EXPECT_EQ(shape_to_string({3, 4}), "[3, 4]");
  EXPECT_EQ(shape_to_string({}), "[]");
}

TEST(Box, ShapeVolumeRejectsNegativeExtentsAndOverflow) {
  EXPECT_EQ(shape_volume({}), 1);
  EXPECT_EQ(shape_volume({2, 0, 5}), 0);
  EXPECT_EQ(shape_volume({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  try {
    shape_volume({4, -1});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("[4, -1]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(shape_volume({int64_t{1} << 32, int64_t{1} << 32}), Error);
  EXPECT_THROW(shape_volume({std::numeric_limits<int64_t>::max(), 2}), Error);
}

TEST(Box, IntersectAndContains) {
  const Box a{{0, 0}, {4, 4}};
  const Box b{{2, 3}, {4, 4}};
  EXPECT_EQ(intersect(a, b), (Box{{2, 3}, {2, 1}}));
  EXPECT_EQ(intersect(b, a), intersect(a, b));
  EXPECT_FALSE(intersect(a, Box{{4, 0}, {1, 4}}).has_value());  // touching is not overlapping
  EXPECT_FALSE(intersect(a, Box{{0}, {4}}).has_value());        // different ranks
  EXPECT_EQ(intersect(Box{}, Box{}), Box{});
  EXPECT_TRUE(contains(a, Box{{1, 1}, {3, 3}}));
  EXPECT_FALSE(contains(a, Box{{1, 1}, {4, 3}}));
  EXPECT_TRUE(contains(Box{}, Box{}));
  EXPECT_TRUE(inside_shape(Box{{2, 0}, {2, 5}}, {4, 5}));
  EXPECT_FALSE(inside_shape(Box{{2, 0}, {3, 5}}, {4, 5}));
  EXPECT_FALSE(inside_shape(Box{{-1, 0}, {1, 5}}, {4, 5}));
  EXPECT_FALSE(inside_shape(Box{{0}, {4}}, {4, 5}));
  EXPECT_FALSE(inside_shape(Box{{1}, {std::numeric_limits<int64_t>::max()}}, {4}));
}

// Whether `a` starts before `b` in row-major order.
bool row_major_before(const Box& a, const Box& b) {
  return std::lexicographical_compare(a.offset.begin(), a.offset.end(), b.offset.begin(),
                                      b.offset.end());
}

void expect_valid_split(const Box& box, int64_t element_size, int64_t max_bytes) {
  SCOPED_TRACE("box " + box.to_string() + " element " + std::to_string(element_size) +
               " max_bytes " + std::to_string(max_bytes));
  const std::vector<Box> pieces = split_box(box, element_size, max_bytes);
  const int64_t row_bytes = box.rank() == 0 ? element_size : box.count.back() * element_size;
  int64_t covered = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const Box& piece = pieces[i];
    ASSERT_TRUE(contains(box, piece)) << piece.to_string();
    ASSERT_FALSE(piece.empty()) << piece.to_string();
    ASSERT_LE(piece.volume() * element_size, std::max(max_bytes, element_size))
        << piece.to_string();
    // Rows are cut only when a whole row does not fit.
    if (row_bytes <= max_bytes && box.rank() > 0) {
      ASSERT_EQ(piece.count.back(), box.count.back()) << piece.to_string();
    }
    if (i > 0) {
      ASSERT_TRUE(row_major_before(pieces[i - 1], piece)) << piece.to_string();
    }
    for (std::size_t j = 0; j < i; ++j)
      ASSERT_FALSE(intersect(pieces[j], piece).has_value())
          << pieces[j].to_string() << " and " << piece.to_string();
    covered += piece.volume();
  }
  // Disjoint pieces inside the box whose volumes add up to the box's: their union is the box.
  EXPECT_EQ(covered, box.volume());
  if (box.volume() * element_size <= max_bytes) {
    EXPECT_EQ(pieces.size(), box.empty() ? 0u : 1u);
  }
}

TEST(SplitBox, EdgeCases) {
  EXPECT_EQ(split_box(Box{}, 8, 4), std::vector<Box>{Box{}});
  EXPECT_TRUE(split_box(Box{{0, 3}, {5, 0}}, 4, 100).empty());
  EXPECT_THROW(split_box(Box{{0}, {4}}, 0, 100), Error);
  EXPECT_THROW(split_box(Box{{0}, {4}}, 4, 0), Error);

  // Whole rows of 4 x 4 bytes: 16 bytes per row, 40 bytes per piece -> 2 rows per piece.
  const auto rows = split_box(Box{{10, 0}, {5, 4}}, 4, 40);
  EXPECT_EQ(rows,
            (std::vector<Box>{Box{{10, 0}, {2, 4}}, Box{{12, 0}, {2, 4}}, Box{{14, 0}, {1, 4}}}));
  // A 1-D shard larger than a piece is cut inside its single row.
  const auto runs = split_box(Box{{3}, {10}}, 8, 32);
  EXPECT_EQ(runs, (std::vector<Box>{Box{{3}, {4}}, Box{{7}, {4}}, Box{{11}, {2}}}));
  // Rows too large: every outer index separately, each row in runs.
  const auto cut_rows = split_box(Box{{0, 0}, {2, 5}}, 1, 3);
  EXPECT_EQ(cut_rows, (std::vector<Box>{Box{{0, 0}, {1, 3}}, Box{{0, 3}, {1, 2}},
                                        Box{{1, 0}, {1, 3}}, Box{{1, 3}, {1, 2}}}));
  // Elements larger than a piece still give one element per piece.
  EXPECT_EQ(split_box(Box{{0}, {3}}, 16, 8).size(), 3u);
}

TEST(SplitBox, RandomBoxesAreCoveredDisjointlyInBoundedPieces) {
  std::mt19937_64 random(1234 + static_cast<uint64_t>(world_rank()));
  for (int trial = 0; trial < 400; ++trial) {
    const int rank = std::uniform_int_distribution<int>(1, 4)(random);
    Box box{Shape(rank), Shape(rank)};
    for (int d = 0; d < rank; ++d) {
      box.offset[d] = std::uniform_int_distribution<int64_t>(0, 20)(random);
      box.count[d] = std::uniform_int_distribution<int64_t>(trial % 50 == 0 ? 0 : 1, 7)(random);
    }
    const int64_t element_size = int64_t{1} << std::uniform_int_distribution<int>(0, 3)(random);
    const int64_t max_bytes = std::uniform_int_distribution<int64_t>(1, 3000)(random);
    expect_valid_split(box, element_size, max_bytes);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(SplitBox, LargeBoxesStayCheap) {
  // 64 Mi floats in 4 MiB pieces: 64 pieces of whole rows, without enumerating elements.
  const Box box{{0, 0}, {int64_t{1} << 16, 1024}};
  const auto pieces = split_box(box, 4, int64_t{4} << 20);
  ASSERT_EQ(pieces.size(), 64u);
  for (const Box& piece : pieces) EXPECT_EQ(piece.count, (Shape{1024, 1024}));
}

}  // namespace
}  // namespace cairn
