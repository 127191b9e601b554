// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checksums of pieces of tensors (XXH3-64), computed where the bytes already are: inside a larger
// row-major box buffer, without gathering them first.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cairn/tensor/box.hpp"

namespace cairn {

/// Below this many bytes, checksums are computed by the calling thread alone: waking an OpenMP
/// team costs more than hashing them (XXH3: ~0.1 ms per MiB), and with many ranks per core
/// (oversubscribed test and benchmark jobs) its spinning threads slowed every rank's save.
constexpr int64_t kParallelChecksumBytes = int64_t{1} << 20;

uint64_t checksum_bytes(const void* data, std::size_t size) noexcept;
/// XXH3-64 of the elements of `region` in row-major order, read from `buffer` laid out as
/// `buffer_box`. Equal to checksum_bytes of the region copied out contiguously.
uint64_t checksum_region(const void* buffer, const Box& buffer_box, const Box& region,
                         int64_t element_size);
/// 16 lowercase hex digits.
std::string checksum_to_hex(uint64_t value);
/// Inverse of checksum_to_hex; false if `hex` is not 16 hex digits.
bool checksum_from_hex(std::string_view hex, uint64_t& value) noexcept;

}  // namespace cairn
