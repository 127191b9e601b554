// SPDX-License-Identifier: Apache-2.0
// Compiled with -mavx2. Nothing here but xxhash's inline code (static, so no AVX2 instruction can
// leak into a function another file shares): the rest of the library runs on any x86-64.
#include "storage/checksum_avx2.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cairn::detail {

uint64_t xxh3_64_avx2(const void* data, std::size_t size) noexcept {
  return XXH3_64bits(data, size);
}

void xxh3_64_update_avx2(void* state, const void* data, std::size_t size) noexcept {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
}

}  // namespace cairn::detail
