// SPDX-License-Identifier: Apache-2.0
#include "cairn/version.hpp"

namespace cairn {

// CAIRN_VERSION is the library's own, set when it is compiled; the header's macros are the
// caller's.
const char* version() noexcept {
  return CAIRN_VERSION;
}

}  // namespace cairn
