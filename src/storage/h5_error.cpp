// SPDX-License-Identifier: Apache-2.0
#include "storage/h5_error.hpp"

#include <algorithm>
#include <mutex>

namespace cairn::h5 {
namespace {

herr_t collect_frame(unsigned n, const H5E_error2_t* err, void* out) {
  auto& text = *static_cast<std::string*>(out);
  if (n >= 6) return 0;  // the innermost frames carry the cause; deeper ones are noise
  text += "\n    ";
  text += err->func_name ? err->func_name : "?";
  text += ": ";
  // Some descriptions hold a raw newline (H5F_open's "time = ...\n, name = ..."): one frame per
  // line keeps the message readable and parseable.
  std::string desc = err->desc ? err->desc : "";
  std::replace(desc.begin(), desc.end(), '\n', ' ');
  text += desc;
  return 0;
}

}  // namespace

void silence_error_printing() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string take_error_stack() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_frame, &text);
  H5Eclear2(H5E_DEFAULT);
  return text;
}

void throw_error(const std::string& what, const ErrorContext& context, ErrorCode code) {
  std::string stack = take_error_stack();
  throw Error(code, stack.empty() ? what : what + "; HDF5 says:" + stack, context);
}

hid_t check_id(hid_t id, const std::string& what, const ErrorContext& context) {
  if (id < 0) throw_error(what, context);
  return id;
}

void check_status(herr_t status, const std::string& what, const ErrorContext& context) {
  if (status < 0) throw_error(what, context);
}

}  // namespace cairn::h5
