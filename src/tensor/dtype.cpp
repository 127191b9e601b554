// SPDX-License-Identifier: Apache-2.0
#include "cairn/tensor/dtype.hpp"

#include <cstring>

#include "tensor/dtype_traits.hpp"

namespace cairn {
namespace detail {

static_assert(
    [] {
      for (std::size_t i = 0; i < kAllDTypes.size(); ++i)
        if (static_cast<std::size_t>(kAllDTypes[i]) != i ||
            visit_dtype(kAllDTypes[i], [](auto row) { return row.dtype; }) != kAllDTypes[i])
          return false;
      return true;
    }(),
    "kAllDTypes lists the dtypes in enum order, each visiting its own row");

float half_to_float(uint16_t bits) noexcept {
  const uint32_t sign = (bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t out;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000u | (mantissa << 13);  // inf or nan
  } else if (exponent != 0) {
    out = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    out = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    out = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

float bfloat16_to_float(uint16_t bits) noexcept {
  const uint32_t out = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

}  // namespace detail

std::size_t dtype_size(DType dtype) noexcept {
  if (!detail::known_dtype(dtype)) return 0;
  return detail::visit_dtype(dtype, [](auto row) { return row.size; });
}

std::string_view dtype_name(DType dtype) noexcept {
  if (!detail::known_dtype(dtype)) return "invalid";
  return detail::visit_dtype(dtype, [](auto row) { return row.name; });
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const DType dtype : detail::kAllDTypes)
    if (dtype_name(dtype) == name) return dtype;
  return std::nullopt;
}

}  // namespace cairn
