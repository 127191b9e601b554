// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cairn/comm/session.hpp"
#include "cairn/tensor/variable.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

TEST(Variable, BlockShardHoldsThisRanksRows) {
  const Session session(MPI_COMM_WORLD);
  const auto variable = Variable::create<float>(session, {7, 5}, Layout::block());
  const auto [begin, end] = block_range(7, session.size(), session.rank());
  EXPECT_EQ(variable->kind(), std::string("variable"));
  EXPECT_EQ(variable->dtype(), DType::kF32);
  EXPECT_EQ(variable->shape(), (Shape{7, 5}));
  EXPECT_EQ(variable->rank(), session.rank());
  EXPECT_EQ(variable->nranks(), session.size());
  EXPECT_EQ(variable->local_elements(), (end - begin) * 5);
  EXPECT_EQ(variable->bytes().size(), static_cast<std::size_t>((end - begin) * 5 * 4));
  if (begin < end) {
    ASSERT_EQ(variable->local_boxes().size(), 1u);
    EXPECT_EQ(variable->local_boxes()[0], (Box{{begin, 0}, {end - begin, 5}}));
  } else {
    EXPECT_TRUE(variable->local_boxes().empty());
  }
  // All ranks together hold each element once.
  EXPECT_EQ(session.comm().allreduce_sum(variable->local_elements()), 35);
}

TEST(Variable, StartsZeroFilled) {
  const Session session(MPI_COMM_WORLD);
  const auto variable = Variable::create<double>(session, {64, 3}, Layout::block());
  const auto bytes = variable->bytes();
  EXPECT_TRUE(
      std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; }));
}

// Storage comes from calloc, not a zero-filling pass (ZeroedBuffer): memory freed by an earlier,
// dirtied variable of the same size must still come back zero, below and above the size where the
// allocator switches from its heap to fresh pages.
TEST(Variable, ReusedMemoryStartsZeroToo) {
  const Session session(MPI_COMM_WORLD);
  for (const int64_t rows : {int64_t{3}, int64_t{4} << 10, int64_t{1} << 20}) {
    for (int round = 0; round < 2; ++round) {
      const auto variable = Variable::create<float>(session, {rows, 16}, Layout::block());
      const auto bytes = variable->bytes();
      EXPECT_TRUE(
          std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; }))
          << rows << " rows, round " << round;
      std::fill(bytes.begin(), bytes.end(), std::byte{0xA5});  // freed dirty for the next round
    }
  }
}

TEST(Variable, TypedViewsShareTheStorage) {
  Variable writable(0, 1, DType::kI32, {2, 3},
                    Layout::explicit_boxes({{Box{{0, 0}, {2, 2}}, Box{{0, 2}, {2, 1}}}}));
  const Variable& variable = writable;
  ASSERT_EQ(variable.local_boxes().size(), 2u);
  auto first = writable.local<int32_t>(0);
  auto second = writable.local<int32_t>(1);
  ASSERT_EQ(first.size(), 4u);
  ASSERT_EQ(second.size(), 2u);
  for (int i = 0; i < 4; ++i) first[i] = i + 1;
  second[0] = 10;
  second[1] = 20;
  const auto all = writable.local_all<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(all.begin(), all.end()),
            (std::vector<int32_t>{1, 2, 3, 4, 10, 20}));
  EXPECT_EQ(variable.local<int32_t>(1)[1], 20);  // const view
  EXPECT_EQ(variable.box_bytes(1).size(), 8u);
  EXPECT_EQ(variable.box_bytes(1).data(), variable.bytes().data() + 16);
}

TEST(Variable, TypeMismatchIsAnError) {
  Variable variable(0, 1, DType::kF32, {4}, Layout::replicated());
  try {
    variable.local<double>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "invalid argument: variable has dtype f32, requested f64");
  }
  EXPECT_THROW(variable.local_all<int32_t>(), Error);
  EXPECT_NO_THROW(variable.local<float>());
}

TEST(Variable, BoxIndexIsChecked) {
  Variable variable(0, 1, DType::kU8, {4}, Layout::replicated());
  EXPECT_EQ(variable.box_bytes(0).size(), 4u);
  EXPECT_THROW(variable.box_bytes(1), Error);
  // A rank that owns nothing has no box 0.
  Variable empty(3, 4, DType::kU8, {2}, Layout::block());
  EXPECT_EQ(empty.local_elements(), 0);
  EXPECT_TRUE(empty.bytes().empty());
  EXPECT_THROW(empty.box_bytes(0), Error);
}

TEST(Variable, ScalarsHoldOneElement) {
  Variable scalar(0, 1, DType::kI64, {}, Layout::replicated());
  EXPECT_EQ(scalar.local_elements(), 1);
  scalar.local<int64_t>()[0] = 42;
  EXPECT_EQ(scalar.local_all<int64_t>()[0], 42);
}

TEST(Variable, InvalidLayoutIsRejectedAtConstruction) {
  EXPECT_THROW(
      Variable(0, 2, DType::kF32, {4}, Layout::explicit_boxes({{Box{{0}, {4}}}, {Box{{1}, {1}}}})),
      Error);
  EXPECT_THROW(Variable(0, 3, DType::kF32, {4, 4}, Layout::grid({2, 2})), Error);
  EXPECT_THROW(Variable(2, 2, DType::kF32, {4}, Layout::block()), Error);
}

// Constructs on every rank and returns the error (the same everywhere: the checks are local and
// depend only on the arguments).
Error construction_error(DType dtype, const Shape& shape, Layout layout) {
  try {
    Variable v(testing::session(), dtype, shape, std::move(layout));
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorCode::kInternal, "constructed");
}

TEST(Variable, FileFormatLimitsAreInvalidArgumentsAtConstruction) {
  const Error axes = construction_error(DType::kF32, Shape(33, 1), Layout::replicated());
  EXPECT_EQ(axes.code(), ErrorCode::kInvalidArgument) << axes.what();
  EXPECT_NE(axes.message().find("at most 32 axes"), std::string::npos) << axes.what();
  EXPECT_NO_THROW(Variable(testing::session(), DType::kF32, Shape(32, 1), Layout::block(31)));

  const Error negative = construction_error(DType::kI64, {4, -1}, Layout::block(0));
  EXPECT_EQ(negative.code(), ErrorCode::kInvalidArgument) << negative.what();
  EXPECT_NE(negative.message().find("negative"), std::string::npos) << negative.what();

  const Error overflow =
      construction_error(DType::kF64, {int64_t{1} << 40, int64_t{1} << 30}, Layout::block(0));
  EXPECT_EQ(overflow.code(), ErrorCode::kInvalidArgument) << overflow.what();

  // 2^54 elements of 8 bytes fit int64 but not the format's 2^56-byte limit.
  const Error bytes = construction_error(DType::kF64, {int64_t{1} << 54}, Layout::block(0));
  EXPECT_EQ(bytes.code(), ErrorCode::kInvalidArgument) << bytes.what();
  EXPECT_NE(bytes.message().find("exceeds the largest tensor"), std::string::npos) << bytes.what();
}

// GCC says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define CAIRN_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAIRN_TEST_UNDER_ASAN 1
#endif
#endif
#ifndef CAIRN_TEST_UNDER_ASAN
#define CAIRN_TEST_UNDER_ASAN 0
#endif

TEST(Variable, AnAllocationThatCannotBeSatisfiedIsACairnErrorNamingTheSize) {
#if CAIRN_TEST_UNDER_ASAN
  // ASan's allocator prints a warning for every failed mmap, which the sanitizer runs count as a
  // finding; what this test checks (the C++ allocator's failure becoming a cairn::Error) is the
  // normal build's.
  GTEST_SKIP() << "allocation failure is tested in the build without ASan";
#endif
  // 2^50 f32 elements, replicated: 4 PiB on every rank.
  const Error e = construction_error(DType::kF32, {int64_t{1} << 50}, Layout::replicated());
  EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
  EXPECT_NE(e.message().find("cannot allocate 4503599627370496 bytes"), std::string::npos)
      << e.what();
  EXPECT_EQ(e.context().rank, testing::session().rank());
}

TEST(Variable, FillAndCheckAcrossLayouts) {
  const Session session(MPI_COMM_WORLD);
  for (const Layout& layout : {Layout::replicated(), Layout::block(0), Layout::block(1)}) {
    Variable variable(session, DType::kF32, {9, 6}, layout);
    testing::fill(variable, 3);
    EXPECT_EQ(testing::count_mismatches(variable, 3), 0) << layout.describe();
    EXPECT_GT(testing::count_mismatches(variable, 4) + (variable.local_elements() == 0), 0);
  }
}

}  // namespace
}  // namespace cairn
