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

void* xxh3_state_new_avx2() noexcept {
  XXH3_state_t* state = XXH3_createState();
  if (state) XXH3_64bits_reset(state);
  return state;
}

void xxh3_state_free_avx2(void* state) noexcept {
  XXH3_freeState(static_cast<XXH3_state_t*>(state));
}

void xxh3_64_update_avx2(void* state, const void* data, std::size_t size) noexcept {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
}

uint64_t xxh3_64_digest_avx2(const void* state) noexcept {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state));
}

}  // namespace cairn::detail
