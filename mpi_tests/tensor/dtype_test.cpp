// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <string>

#include "cairn/tensor/dtype.hpp"

namespace cairn {
namespace {

struct Expected {
  DType dtype;
  const char* name;
  std::size_t size;
};

constexpr Expected kAll[] = {
    {DType::kF16, "f16", 2},   {DType::kBF16, "bf16", 2}, {DType::kF32, "f32", 4},
    {DType::kF64, "f64", 8},   {DType::kI8, "i8", 1},     {DType::kI16, "i16", 2},
    {DType::kI32, "i32", 4},   {DType::kI64, "i64", 8},   {DType::kU8, "u8", 1},
    {DType::kU16, "u16", 2},   {DType::kU32, "u32", 4},   {DType::kU64, "u64", 8},
    {DType::kBool, "bool", 1},
};

TEST(DType, NamesAndSizes) {
  for (const Expected& e : kAll) {
    EXPECT_EQ(dtype_name(e.dtype), e.name);
    EXPECT_EQ(dtype_size(e.dtype), e.size) << e.name;
    const auto parsed = dtype_from_name(e.name);
    ASSERT_TRUE(parsed.has_value()) << e.name;
    EXPECT_EQ(*parsed, e.dtype);
  }
}

TEST(DType, UnknownNamesAreRejected) {
  EXPECT_FALSE(dtype_from_name("").has_value());
  EXPECT_FALSE(dtype_from_name("float32").has_value());
  EXPECT_FALSE(dtype_from_name("F32").has_value());
  EXPECT_FALSE(dtype_from_name("f32 ").has_value());
}

TEST(DType, CompileTimeMapping) {
  static_assert(dtype_of<float> == DType::kF32);
  static_assert(dtype_of<double> == DType::kF64);
  static_assert(dtype_of<int64_t> == DType::kI64);
  static_assert(dtype_of<BFloat16> == DType::kBF16);
  EXPECT_EQ(dtype_size(dtype_of<uint16_t>), sizeof(uint16_t));
  EXPECT_EQ(dtype_size(dtype_of<Float16>), sizeof(Float16));
  EXPECT_EQ(dtype_size(dtype_of<bool>), sizeof(bool));
}

}  // namespace
}  // namespace cairn
