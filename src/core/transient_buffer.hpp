// SPDX-License-Identifier: Apache-2.0
#pragma once
// Large buffers that live for one operation (the read-ahead ring, the packed read windows, the
// node share's buffers): fresh memory whose first touch costs a page fault per 4 KiB page. Mapped
// on their own, 2 MiB-aligned and marked for transparent huge pages, a 16 MiB buffer costs 8
// faults instead of 4,096 where the kernel allows huge pages ("madvise" or "always"); elsewhere it
// is ordinary memory. Their own mapping, not the heap: the advice then ends with the buffer instead
// of staying on heap addresses that later allocations reuse.
#include <cstddef>
#include <utility>

namespace cairn::detail {

class TransientBuffer {
 public:
  TransientBuffer() = default;
  /// Local. `size` uninitialized bytes; throws std::bad_alloc when the memory cannot be had.
  explicit TransientBuffer(std::size_t size);
  ~TransientBuffer();
  TransientBuffer(TransientBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        mapped_(std::exchange(other.mapped_, 0)) {}
  TransientBuffer& operator=(TransientBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      mapped_ = std::exchange(other.mapped_, 0);
    }
    return *this;
  }
  TransientBuffer(const TransientBuffer&) = delete;
  TransientBuffer& operator=(const TransientBuffer&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // bytes mapped at data_ (0: from the heap)
};

}  // namespace cairn::detail
