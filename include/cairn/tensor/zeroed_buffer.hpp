// SPDX-License-Identifier: Apache-2.0
#pragma once
// Zero-initialized bytes that cost no pass over memory when they are large: the allocator hands out
// fresh pages from the OS, which are zero until first touched. A restart allocates a model and then
// restores into it; with a zero-filling allocation every byte would be touched twice.
#include <cstddef>
#include <memory>
#include <span>

namespace cairn {

class ZeroedBuffer {
 public:
  ZeroedBuffer() = default;
  /// Local. `size` zero bytes; throws Error(kIo) naming the size when the memory cannot be had
  /// (so an oversized tensor is a cairn error, not std::bad_alloc).
  explicit ZeroedBuffer(std::size_t size);

  std::byte* data() noexcept { return data_.get(); }
  const std::byte* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  operator std::span<std::byte>() noexcept { return {data_.get(), size_}; }
  operator std::span<const std::byte>() const noexcept { return {data_.get(), size_}; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace cairn
