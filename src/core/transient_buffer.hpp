// SPDX-License-Identifier: Apache-2.0
#pragma once
// Large buffers that live for one operation (the read-ahead ring): fresh memory whose first touch
// costs a page fault per 4 KiB page. Aligned to 2 MiB and marked for transparent huge pages, a
// 16 MiB buffer costs 8 faults instead of 4,096 where the kernel allows huge pages ("madvise" or
// "always"); elsewhere it is ordinary memory.
#include <cstddef>
#include <memory>
#include <utility>

namespace cairn::detail {

class TransientBuffer {
 public:
  TransientBuffer() = default;
  /// Local. `size` uninitialized bytes; throws std::bad_alloc when the memory cannot be had.
  explicit TransientBuffer(std::size_t size);
  TransientBuffer(TransientBuffer&& other) noexcept
      : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
  TransientBuffer& operator=(TransientBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  std::byte* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace cairn::detail
