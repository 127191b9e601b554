// SPDX-License-Identifier: Apache-2.0
#pragma once
// Turning HDF5 failures into cairn::Error with the HDF5 error stack in the message.
#include <hdf5.h>

#include <string>

#include "cairn/core/error.hpp"

namespace cairn::h5 {

/// Turns off HDF5's own printing of error stacks (once per process); cairn reports them instead.
void silence_error_printing();
/// The current HDF5 error stack, one frame per line, most specific first; clears the stack.
std::string take_error_stack();
[[noreturn]] void throw_error(const std::string& what, const ErrorContext& context,
                              ErrorCode code = ErrorCode::kHdf5);
/// Returns `id`, or throws naming `what` if it is negative.
hid_t check_id(hid_t id, const std::string& what, const ErrorContext& context);
void check_status(herr_t status, const std::string& what, const ErrorContext& context);

}  // namespace cairn::h5
