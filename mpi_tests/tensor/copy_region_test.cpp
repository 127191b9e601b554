// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cairn/core/error.hpp"
#include "cairn/tensor/box.hpp"
#include "world.hpp"

namespace cairn {
namespace {

using tensor_tests::world_rank;

// Row-major index of global coordinate `coord` inside `box`'s storage.
int64_t index_in(const Box& box, const Shape& coord) {
  int64_t index = 0;
  for (std::size_t d = 0; d < box.rank(); ++d)
    index = index * box.count[d] + (coord[d] - box.offset[d]);
  return index;
}

// The obvious element-by-element copy the real one must agree with.
void naive_copy(const std::vector<uint8_t>& src, const Box& src_box, std::vector<uint8_t>& dst,
                const Box& dst_box, const Box& region, int64_t element_size) {
  const int64_t n = region.volume();
  Shape coord(region.rank());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i;
    for (std::size_t d = region.rank(); d-- > 0;) {
      coord[d] = region.offset[d] + rest % region.count[d];
      rest /= region.count[d];
    }
    std::memcpy(&dst[index_in(dst_box, coord) * element_size],
                &src[index_in(src_box, coord) * element_size], element_size);
  }
}

std::vector<uint8_t> pattern(int64_t bytes, uint64_t seed) {
  std::vector<uint8_t> data(bytes);
  std::mt19937_64 random(seed);
  for (auto& byte : data) byte = static_cast<uint8_t>(random());
  return data;
}

// Copies `region` with copy_region and with the naive copy, into identical destinations.
void expect_same_as_naive(const Box& src_box, const Box& dst_box, const Box& region,
                          int64_t element_size, uint64_t seed) {
  SCOPED_TRACE("src " + src_box.to_string() + " dst " + dst_box.to_string() + " region " +
               region.to_string() + " element " + std::to_string(element_size));
  const auto src = pattern(src_box.volume() * element_size, seed);
  auto expected = pattern(dst_box.volume() * element_size, seed + 1);
  auto actual = expected;
  naive_copy(src, src_box, expected, dst_box, region, element_size);
  copy_region(src.data(), src_box, actual.data(), dst_box, region, element_size);
  ASSERT_EQ(actual.size(), expected.size());
  int64_t mismatches = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) mismatches += actual[i] != expected[i];
  EXPECT_EQ(mismatches, 0);
}

// A non-empty box inside `shape`.
Box random_box_inside(const Shape& shape, std::mt19937_64& random) {
  Box box{Shape(shape.size()), Shape(shape.size())};
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const int64_t begin = std::uniform_int_distribution<int64_t>(0, shape[d] - 1)(random);
    const int64_t end = std::uniform_int_distribution<int64_t>(begin + 1, shape[d])(random);
    box.offset[d] = begin;
    box.count[d] = end - begin;
  }
  return box;
}

TEST(CopyRegion, RandomBoxesMatchTheNaiveCopy) {
  std::mt19937_64 random(99 + static_cast<uint64_t>(world_rank()));
  int compared = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const int rank = std::uniform_int_distribution<int>(1, 4)(random);
    Shape shape(rank);
    for (auto& extent : shape) extent = std::uniform_int_distribution<int64_t>(1, 9)(random);
    const Box src_box = random_box_inside(shape, random);
    // Often let the destination span whole inner axes, so that merged runs are exercised.
    Box dst_box = trial % 3 == 0 ? Box::whole(shape) : random_box_inside(shape, random);
    const auto overlap = intersect(src_box, dst_box);
    if (!overlap) continue;
    Box region = *overlap;
    if (trial % 2 == 0) {
      if (auto smaller = intersect(region, random_box_inside(shape, random))) region = *smaller;
    }
    const int64_t element_size = int64_t{1} << std::uniform_int_distribution<int>(0, 3)(random);
    expect_same_as_naive(src_box, dst_box, region, element_size, trial);
    if (HasFailure()) return;
    ++compared;
  }
  EXPECT_GT(compared, 300);
}

TEST(CopyRegion, ScalarsAndEmptyRegions) {
  const double value = 2.5;
  double out = 0;
  copy_region(&value, Box{}, &out, Box{}, Box{}, sizeof(double));
  EXPECT_EQ(out, 2.5);

  const std::vector<uint8_t> src(16, 7);
  std::vector<uint8_t> dst(16, 0);
  copy_region(src.data(), Box{{0, 0}, {4, 4}}, dst.data(), Box{{0, 0}, {4, 4}}, Box{{2, 1}, {0, 3}},
              1);
  EXPECT_EQ(dst, std::vector<uint8_t>(16, 0));
}

TEST(CopyRegion, RejectsRegionsOutsideEitherBox) {
  std::vector<uint8_t> buffer(64);
  EXPECT_THROW(
      copy_region(buffer.data(), Box{{0}, {8}}, buffer.data(), Box{{4}, {8}}, Box{{2}, {4}}, 1),
      Error);
  EXPECT_THROW(copy_region(buffer.data(), Box{{0}, {8}}, buffer.data(), Box{{0}, {8}},
                           Box{{0, 0}, {1, 1}}, 1),
               Error);
}

// Large copies take the OpenMP paths: one long run split across threads, and many runs.
TEST(CopyRegion, LargeRegionsMatchTheNaiveCopy) {
  // Whole rows of both boxes: one contiguous run of ~1.2 MiB of floats.
  expect_same_as_naive(Box{{0, 0}, {600, 1024}}, Box{{100, 0}, {400, 1024}},
                       Box{{150, 0}, {300, 1024}}, 4, 1);
  // Partial rows: 500 runs of 800 floats.
  expect_same_as_naive(Box{{0, 0}, {600, 1024}}, Box{{50, 100}, {550, 900}},
                       Box{{60, 150}, {500, 800}}, 4, 2);
  // Inner axes whole in both boxes merge: 2 runs of 20 x 16 x 256 doubles.
  expect_same_as_naive(Box{{0, 0, 0, 0}, {4, 40, 16, 256}}, Box{{0, 5, 0, 0}, {4, 35, 16, 256}},
                       Box{{1, 10, 0, 0}, {2, 20, 16, 256}}, 8, 3);
  // Whole rows across several axes: fully contiguous in both boxes.
  expect_same_as_naive(Box{{0, 0, 0}, {40, 64, 128}}, Box{{10, 0, 0}, {30, 64, 128}},
                       Box{{12, 0, 0}, {25, 64, 128}}, 8, 4);
}

}  // namespace
}  // namespace cairn
