// SPDX-License-Identifier: Apache-2.0
#pragma once
// XXH3-64 built for AVX2 (checksum_avx2.cpp is the only file compiled with -mavx2): call only on
// a CPU that has AVX2. The values equal those of the plain build.
#include <cstddef>
#include <cstdint>

namespace cairn::detail {

uint64_t xxh3_64_avx2(const void* data, std::size_t size) noexcept;
/// A streaming state of this build's own (never one made by libxxhash: its layout is only
/// guaranteed for the header's version), reset; nullptr if out of memory.
void* xxh3_state_new_avx2() noexcept;
void xxh3_state_free_avx2(void* state) noexcept;
void xxh3_64_update_avx2(void* state, const void* data, std::size_t size) noexcept;
uint64_t xxh3_64_digest_avx2(const void* state) noexcept;

}  // namespace cairn::detail
