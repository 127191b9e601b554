#include "cairn/tensor/dtype.hpp"

#include <array>

namespace cairn {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

// Indexed by the enum value; the names are part of the file format and must never change.
constexpr std::array<DTypeInfo, 13> kDTypes = {{
    {DType::kF16, "f16", 2},
    {DType::kBF16, "bf16", 2},
    {DType::kF32, "f32", 4},
    {DType::kF64, "f64", 8},
    {DType::kI8, "i8", 1},
    {DType::kI16, "i16", 2},
    {DType::kI32, "i32", 4},
    {DType::kI64, "i64", 8},
    {DType::kU8, "u8", 1},
    {DType::kU16, "u16", 2},
    {DType::kU32, "u32", 4},
    {DType::kU64, "u64", 8},
    {DType::kBool, "bool", 1},
}};

static_assert([] {
  for (std::size_t i = 0; i < kDTypes.size(); ++i)
    if (static_cast<std::size_t>(kDTypes[i].dtype) != i) return false;
  return true;
}());

const DTypeInfo* find(DType dtype) noexcept {
  const auto index = static_cast<std::size_t>(dtype);
  return index < kDTypes.size() ? &kDTypes[index] : nullptr;
}

}  // namespace

std::size_t dtype_size(DType dtype) noexcept {
  const DTypeInfo* info = find(dtype);
  return info ? info->size : 0;
}

std::string_view dtype_name(DType dtype) noexcept {
  const DTypeInfo* info = find(dtype);
  return info ? info->name : std::string_view("invalid");
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const DTypeInfo& info : kDTypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}

}  // namespace cairn
