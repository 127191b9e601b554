// SPDX-License-Identifier: Apache-2.0
#pragma once
// XXH3-64 built for AVX2 (checksum_avx2.cpp is the only file compiled with -mavx2): call only on
// a CPU that has AVX2. The values equal those of the plain build.
#include <cstddef>
#include <cstdint>

namespace cairn::detail {

uint64_t xxh3_64_avx2(const void* data, std::size_t size) noexcept;
/// Adds bytes to an XXH3_state_t made and reset by libxxhash (the layout does not depend on the
/// vector unit).
void xxh3_64_update_avx2(void* state, const void* data, std::size_t size) noexcept;

}  // namespace cairn::detail
