// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checks and type dispatch shared by the optimizers' apply().
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"
#include "tensor/dtype_traits.hpp"

namespace cairn::detail {

/// Threshold below which an update loop runs on the calling thread alone.
inline constexpr int64_t kParallelUpdateElements = int64_t{1} << 15;

inline void check_update(const char* optimizer, const std::shared_ptr<Variable>& variable,
                         std::span<const double> gradient) {
  if (!variable)
    throw Error(ErrorCode::kInvalidArgument, std::string(optimizer) + ": variable is null");
  if (static_cast<int64_t>(gradient.size()) != variable->local_elements())
    throw Error(ErrorCode::kInvalidArgument,
                std::string(optimizer) + ": gradient has " + std::to_string(gradient.size()) +
                    " elements but this rank holds " + std::to_string(variable->local_elements()) +
                    " elements of the variable");
}

/// Calls `update(T{})` with T the variable's floating-point element type.
template <class Update>
void dispatch_floating(const char* optimizer, DType dtype, Update&& update) {
  visit_dtype(dtype, [&](auto row) {
    using Row = decltype(row);
    // 16-bit floats are stored as bits: the updates need a C++ floating-point element type.
    if constexpr (Row::kind == DTypeKind::kFloat && std::is_floating_point_v<typename Row::Storage>)
      update(typename Row::Storage{});
    else
      throw Error(ErrorCode::kInvalidArgument, std::string(optimizer) +
                                                   " supports f32 and f64 variables, not " +
                                                   std::string(Row::name));
  });
}

}  // namespace cairn::detail
