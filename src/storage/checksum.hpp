// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checksums of pieces of tensors (XXH3-64), computed where the bytes already are: inside a larger
// row-major box buffer, without gathering them first.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cairn/tensor/box.hpp"

namespace cairn {

/// Below this many bytes, checksums are computed by the calling thread alone: waking an OpenMP
/// team costs more than hashing them (XXH3: ~0.1 ms per MiB), and with many ranks per core
/// (oversubscribed test and benchmark jobs) its spinning threads slowed every rank's save.
constexpr int64_t kParallelChecksumBytes = int64_t{1} << 20;

/// XXH3-64 of `size` bytes; on an x86-64 CPU with AVX2, computed by an AVX2 build (chosen at run
/// time; the same value as the SSE2 build of Debian's library, with less CPU).
uint64_t checksum_bytes(const void* data, std::size_t size) noexcept;
/// Whether checksums are computed by the AVX2 build (for tests).
bool checksum_uses_avx2() noexcept;
/// The checksum of bytes that come in parts: digest() equals checksum_bytes of them all at once.
class ChecksumStream {
 public:
  ChecksumStream();  // throws std::bad_alloc
  void update(const void* data, std::size_t size) noexcept;
  uint64_t digest() const noexcept;

 private:
  struct Free {
    void operator()(void* state) const noexcept;
  };
  std::unique_ptr<void, Free> state_;  // an XXH3_state_t, kept out of this header
};
/// XXH3-64 of the elements of `region` in row-major order, read from `buffer` laid out as
/// `buffer_box`. Equal to checksum_bytes of the region copied out contiguously.
uint64_t checksum_region(const void* buffer, const Box& buffer_box, const Box& region,
                         int64_t element_size);
/// 16 lowercase hex digits.
std::string checksum_to_hex(uint64_t value);
/// Inverse of checksum_to_hex; false if `hex` is not 16 hex digits.
bool checksum_from_hex(std::string_view hex, uint64_t& value) noexcept;

}  // namespace cairn
