// SPDX-License-Identifier: Apache-2.0
#include "core/transient_buffer.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace cairn::detail {
namespace {

constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

}  // namespace

TransientBuffer::TransientBuffer(std::size_t size) : size_(size) {
  if (size == 0) return;
  if (size < kHugePageBytes) {
    data_ = static_cast<std::byte*>(std::malloc(size));
    if (!data_) throw std::bad_alloc();
    return;
  }
  if (size > SIZE_MAX - 2 * kHugePageBytes) throw std::bad_alloc();
  const std::size_t rounded = (size + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  // One huge page more than needed, so that an aligned start lies inside; the rest is unmapped.
  const std::size_t reserve = rounded + kHugePageBytes;
  void* mapped =
      ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(mapped);
  const std::uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (aligned > start) ::munmap(mapped, aligned - start);
  if (const std::uintptr_t end = start + reserve; end > aligned + rounded)
    ::munmap(reinterpret_cast<void*>(aligned + rounded), end - (aligned + rounded));
  data_ = reinterpret_cast<std::byte*>(aligned);
  mapped_ = rounded;
  // Advice only: a kernel without transparent huge pages refuses it, and the buffer still works.
  (void)::madvise(data_, mapped_, MADV_HUGEPAGE);
}

TransientBuffer::~TransientBuffer() {
  release();
}

void TransientBuffer::release() noexcept {
  if (mapped_ > 0)
    ::munmap(data_, mapped_);
  else
    std::free(data_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = 0;
}

}  // namespace cairn::detail
