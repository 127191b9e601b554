// SPDX-License-Identifier: Apache-2.0
#include "cairn/tensor/zeroed_buffer.hpp"

#include <cstdlib>
#include <string>

#include "cairn/core/error.hpp"

namespace cairn {

ZeroedBuffer::ZeroedBuffer(std::size_t size) : size_(size) {
  if (size == 0) return;
  // calloc, not malloc + memset: for large sizes glibc maps fresh pages, which the kernel zeroes
  // lazily on first touch (typically the restore's read), instead of writing every byte up front.
  data_.reset(static_cast<std::byte*>(std::calloc(size, 1)));
  if (!data_)
    throw Error(ErrorCode::kIo,
                "cannot allocate " + std::to_string(size) + " bytes for a tensor's local data");
}

void ZeroedBuffer::Free::operator()(std::byte* p) const noexcept {
  std::free(p);
}

}  // namespace cairn
