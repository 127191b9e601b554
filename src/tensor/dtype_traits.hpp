// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one table of element types. Every property of a dtype (its file-format name, how an element
// is stored, what it reads as, its kind and its float fields) is a member of its DTypeTraits
// specialization, and visit_dtype() is the one switch from a runtime DType to that row. Adding a
// dtype touches this file only: the enum value (dtype.hpp), a specialization, a case in
// visit_dtype and an entry in kAllDTypes. -Wswitch (an error with -Werror) names a missing case,
// and every use instantiated for the new row that it does not support fails to compile. Storage
// derives the HDF5 type from the same rows (h5_types.cpp), so HDF5 stays in storage.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/error.hpp"
#include "cairn/tensor/dtype.hpp"

namespace cairn::detail {

enum class DTypeKind { kFloat, kSigned, kUnsigned, kBool };

/// Local. IEEE half and bfloat16 bits as float (exact).
float half_to_float(uint16_t bits) noexcept;
float bfloat16_to_float(uint16_t bits) noexcept;

template <DType D, class S, class V, DTypeKind K>
struct DTypeRow {
  static constexpr DType dtype = D;
  using Storage = S;  // one element's bytes (raw bits for 16-bit floats)
  using Value = V;    // what one element reads as
  static constexpr DTypeKind kind = K;
  static constexpr std::size_t size = sizeof(S);
  static constexpr V value(S stored) noexcept { return static_cast<V>(stored); }
};

// Float rows also give the IEEE fields: sign at the top bit, then exponent, then mantissa.
template <DType D, class S, class V, unsigned E, unsigned M, unsigned B>
struct FloatRow : DTypeRow<D, S, V, DTypeKind::kFloat> {
  static constexpr unsigned exponent_bits = E, mantissa_bits = M, exponent_bias = B;
};

template <DType D>
struct DTypeTraits;

// The names are part of the file format and must never change; safetensors_name is the dtype's
// name in a safetensors header (cairn export).
template <>
struct DTypeTraits<DType::kF16> : FloatRow<DType::kF16, uint16_t, float, 5, 10, 15> {
  static constexpr std::string_view name = "f16";
  static constexpr std::string_view safetensors_name = "F16";
  static float value(uint16_t bits) noexcept { return half_to_float(bits); }
};
template <>
struct DTypeTraits<DType::kBF16> : FloatRow<DType::kBF16, uint16_t, float, 8, 7, 127> {
  static constexpr std::string_view name = "bf16";
  static constexpr std::string_view safetensors_name = "BF16";
  static float value(uint16_t bits) noexcept { return bfloat16_to_float(bits); }
};
template <>
struct DTypeTraits<DType::kF32> : FloatRow<DType::kF32, float, float, 8, 23, 127> {
  static constexpr std::string_view name = "f32";
  static constexpr std::string_view safetensors_name = "F32";
};
template <>
struct DTypeTraits<DType::kF64> : FloatRow<DType::kF64, double, double, 11, 52, 1023> {
  static constexpr std::string_view name = "f64";
  static constexpr std::string_view safetensors_name = "F64";
};
template <>
struct DTypeTraits<DType::kI8> : DTypeRow<DType::kI8, int8_t, int8_t, DTypeKind::kSigned> {
  static constexpr std::string_view name = "i8";
  static constexpr std::string_view safetensors_name = "I8";
};
template <>
struct DTypeTraits<DType::kI16> : DTypeRow<DType::kI16, int16_t, int16_t, DTypeKind::kSigned> {
  static constexpr std::string_view name = "i16";
  static constexpr std::string_view safetensors_name = "I16";
};
template <>
struct DTypeTraits<DType::kI32> : DTypeRow<DType::kI32, int32_t, int32_t, DTypeKind::kSigned> {
  static constexpr std::string_view name = "i32";
  static constexpr std::string_view safetensors_name = "I32";
};
template <>
struct DTypeTraits<DType::kI64> : DTypeRow<DType::kI64, int64_t, int64_t, DTypeKind::kSigned> {
  static constexpr std::string_view name = "i64";
  static constexpr std::string_view safetensors_name = "I64";
};
template <>
struct DTypeTraits<DType::kU8> : DTypeRow<DType::kU8, uint8_t, uint8_t, DTypeKind::kUnsigned> {
  static constexpr std::string_view name = "u8";
  static constexpr std::string_view safetensors_name = "U8";
};
template <>
struct DTypeTraits<DType::kU16> : DTypeRow<DType::kU16, uint16_t, uint16_t, DTypeKind::kUnsigned> {
  static constexpr std::string_view name = "u16";
  static constexpr std::string_view safetensors_name = "U16";
};
template <>
struct DTypeTraits<DType::kU32> : DTypeRow<DType::kU32, uint32_t, uint32_t, DTypeKind::kUnsigned> {
  static constexpr std::string_view name = "u32";
  static constexpr std::string_view safetensors_name = "U32";
};
template <>
struct DTypeTraits<DType::kU64> : DTypeRow<DType::kU64, uint64_t, uint64_t, DTypeKind::kUnsigned> {
  static constexpr std::string_view name = "u64";
  static constexpr std::string_view safetensors_name = "U64";
};
template <>
struct DTypeTraits<DType::kBool> : DTypeRow<DType::kBool, uint8_t, bool, DTypeKind::kBool> {
  static constexpr std::string_view name = "bool";
  static constexpr std::string_view safetensors_name = "BOOL";
  static constexpr bool value(uint8_t stored) noexcept { return stored != 0; }
};

/// Every dtype, in enum order (the enum values are 0, 1, ...; checked in dtype.cpp).
inline constexpr std::array<DType, 13> kAllDTypes = {
    DType::kF16, DType::kBF16, DType::kF32, DType::kF64, DType::kI8,  DType::kI16, DType::kI32,
    DType::kI64, DType::kU8,   DType::kU16, DType::kU32, DType::kU64, DType::kBool};

/// Local. Calls `f(DTypeTraits<D>{})` for the runtime `dtype` and returns what it returns (every
/// call must return the same type). A value outside the enum is kInvalidArgument.
template <class F>
constexpr decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF16:
      return f(DTypeTraits<DType::kF16>{});
    case DType::kBF16:
      return f(DTypeTraits<DType::kBF16>{});
    case DType::kF32:
      return f(DTypeTraits<DType::kF32>{});
    case DType::kF64:
      return f(DTypeTraits<DType::kF64>{});
    case DType::kI8:
      return f(DTypeTraits<DType::kI8>{});
    case DType::kI16:
      return f(DTypeTraits<DType::kI16>{});
    case DType::kI32:
      return f(DTypeTraits<DType::kI32>{});
    case DType::kI64:
      return f(DTypeTraits<DType::kI64>{});
    case DType::kU8:
      return f(DTypeTraits<DType::kU8>{});
    case DType::kU16:
      return f(DTypeTraits<DType::kU16>{});
    case DType::kU32:
      return f(DTypeTraits<DType::kU32>{});
    case DType::kU64:
      return f(DTypeTraits<DType::kU64>{});
    case DType::kBool:
      return f(DTypeTraits<DType::kBool>{});
  }
  throw Error(ErrorCode::kInvalidArgument,
              "unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

/// Local. Whether `dtype` is one of the enum's values (a DType read from elsewhere may not be).
constexpr bool known_dtype(DType dtype) noexcept {
  return static_cast<std::size_t>(dtype) < kAllDTypes.size();
}

}  // namespace cairn::detail
