#pragma once
// Checks and type dispatch shared by the optimizers' apply().
#include <memory>
#include <span>
#include <string>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"

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
  switch (dtype) {
    case DType::kF32:
      update(float{});
      return;
    case DType::kF64:
      update(double{});
      return;
    default:
      throw Error(ErrorCode::kInvalidArgument, std::string(optimizer) +
                                                   " supports f32 and f64 variables, not " +
                                                   std::string(dtype_name(dtype)));
  }
}

}  // namespace cairn::detail
