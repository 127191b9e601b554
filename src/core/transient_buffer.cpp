// SPDX-License-Identifier: Apache-2.0
#include "core/transient_buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace cairn::detail {
namespace {

constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

}  // namespace

TransientBuffer::TransientBuffer(std::size_t size) : size_(size) {
  if (size == 0) return;
  const bool huge = size >= kHugePageBytes;
  const std::size_t alignment = huge ? kHugePageBytes : alignof(std::max_align_t);
  // aligned_alloc wants a multiple of the alignment.
  const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
  data_.reset(static_cast<std::byte*>(std::aligned_alloc(alignment, rounded)));
  if (!data_) throw std::bad_alloc();
  // Advice only: a kernel without transparent huge pages refuses it, and the buffer still works.
  if (huge) (void)::madvise(data_.get(), rounded, MADV_HUGEPAGE);
}

void TransientBuffer::Free::operator()(std::byte* p) const noexcept {
  std::free(p);
}

}  // namespace cairn::detail
