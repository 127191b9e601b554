// SPDX-License-Identifier: Apache-2.0
#pragma once
// Integers read from untrusted JSON (manifests, commit marks, state files). nlohmann's
// get<int64_t>() converts a float such as 1e30 with a cast whose result is undefined (found by
// fuzz_manifest under UBSan), so the type and range are checked first.
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "cairn/tensor/box.hpp"

namespace cairn::detail {

/// Thrown for a number that must be an integer but is not integral or lies outside int64.
struct NotAnInteger {};

inline int64_t json_int64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw NotAnInteger{};
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // A float with an integral value in range (7.0) is accepted, as nlohmann's conversion did.
    const double d = v.get<double>();
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d))
      throw NotAnInteger{};
    return static_cast<int64_t>(d);
  }
  return v.get<int64_t>();  // not a number at all: nlohmann's type_error names the type
}

inline Shape json_shape(const nlohmann::json& v) {
  if (!v.is_array()) return v.get<Shape>();  // nlohmann's type_error
  Shape out;
  out.reserve(v.size());
  for (const nlohmann::json& e : v) out.push_back(json_int64(e));
  return out;
}

}  // namespace cairn::detail
