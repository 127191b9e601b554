// SPDX-License-Identifier: Apache-2.0
#include "storage/checksum.hpp"

#include <xxhash.h>

#include <cstdio>
#include <memory>
#include <new>

#if CAIRN_XXH3_AVX2
#include "storage/checksum_avx2.hpp"
#endif

namespace cairn {
namespace {

#if CAIRN_XXH3_AVX2
bool cpu_has_avx2() noexcept {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}
#endif

}  // namespace

uint64_t checksum_bytes(const void* data, std::size_t size) noexcept {
#if CAIRN_XXH3_AVX2
  if (cpu_has_avx2()) return detail::xxh3_64_avx2(data, size);
#endif
  return XXH3_64bits(data, size);
}

bool checksum_uses_avx2() noexcept {
#if CAIRN_XXH3_AVX2
  return cpu_has_avx2();
#else
  return false;
#endif
}

// A stream's state comes from the same build that updates and digests it.
ChecksumStream::ChecksumStream() {
#if CAIRN_XXH3_AVX2
  if (cpu_has_avx2()) {
    state_.reset(detail::xxh3_state_new_avx2());
    if (!state_) throw std::bad_alloc();
    return;
  }
#endif
  XXH3_state_t* state = XXH3_createState();
  if (!state) throw std::bad_alloc();
  state_.reset(state);
  XXH3_64bits_reset(state);
}

void ChecksumStream::update(const void* data, std::size_t size) noexcept {
#if CAIRN_XXH3_AVX2
  if (cpu_has_avx2()) return detail::xxh3_64_update_avx2(state_.get(), data, size);
#endif
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_.get()), data, size);
}

uint64_t ChecksumStream::digest() const noexcept {
#if CAIRN_XXH3_AVX2
  if (cpu_has_avx2()) return detail::xxh3_64_digest_avx2(state_.get());
#endif
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_.get()));
}

void ChecksumStream::Free::operator()(void* state) const noexcept {
#if CAIRN_XXH3_AVX2
  if (cpu_has_avx2()) return detail::xxh3_state_free_avx2(state);
#endif
  XXH3_freeState(static_cast<XXH3_state_t*>(state));
}

uint64_t checksum_region(const void* buffer, const Box& buffer_box, const Box& region,
                         int64_t element_size) {
  const std::size_t rank = region.rank();
  if (rank == 0) return checksum_bytes(buffer, static_cast<std::size_t>(element_size));
  // Merge trailing axes that the region spans completely into one contiguous run: axes
  // [inner, rank) form one run, axes [0, inner) are iterated.
  std::size_t inner = rank - 1;
  int64_t run = region.count[inner] * element_size;
  while (inner > 0 && region.count[inner] == buffer_box.count[inner]) {
    --inner;
    run *= region.count[inner];
  }
  const std::size_t outer_axes = inner;
  const auto* base = static_cast<const unsigned char*>(buffer);
  if (region.volume() == 0) return checksum_bytes(nullptr, 0);
  if (outer_axes == 0) {
    // One contiguous run, the common case (every packed piece of a save): no index vectors, as
    // this runs once per piece, 20,000 times per save of W2.
    int64_t start = 0, step = element_size;
    for (std::size_t d = rank; d-- > 0;) {
      start += (region.offset[d] - buffer_box.offset[d]) * step;
      step *= buffer_box.count[d];
    }
    return checksum_bytes(base + start, static_cast<std::size_t>(run));
  }
  std::vector<int64_t> stride(rank);
  int64_t s = element_size;
  for (std::size_t d = rank; d-- > 0;) {
    stride[d] = s;
    s *= buffer_box.count[d];
  }
  auto offset_of = [&](const Shape& idx) {
    int64_t off = 0;
    for (std::size_t d = 0; d < rank; ++d)
      off += (region.offset[d] - buffer_box.offset[d] + idx[d]) * stride[d];
    return off;
  };
  Shape idx(rank, 0);
  ChecksumStream stream;
  while (true) {
    stream.update(base + offset_of(idx), static_cast<std::size_t>(run));
    std::size_t d = outer_axes;
    while (d > 0) {
      --d;
      if (++idx[d] < region.count[d]) break;
      idx[d] = 0;
      if (d == 0) return stream.digest();
    }
  }
}

std::string checksum_to_hex(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

bool checksum_from_hex(std::string_view hex, uint64_t& value) noexcept {
  if (hex.size() != 16) return false;
  uint64_t v = 0;
  for (char c : hex) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else
      return false;
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  value = v;
  return true;
}

}  // namespace cairn
