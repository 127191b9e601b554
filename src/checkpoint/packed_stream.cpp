// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/packed_stream.hpp"

#include <algorithm>
#include <cstring>

#include "cairn/core/error.hpp"

namespace cairn::detail {

namespace {

std::span<std::byte> chunk_of(std::vector<std::byte>& buffer, int64_t region_bytes) {
  const auto size = static_cast<std::size_t>(std::min(region_bytes, PackedStream::kChunkBytes));
  if (buffer.size() < size) buffer.resize(size);
  return {buffer.data(), size};
}

}  // namespace

int64_t PackedStream::calls_for(int64_t file_offset, int64_t bytes) {
  if (bytes <= 0) return 0;
  return (file_offset + bytes - 1) / kChunkBytes - file_offset / kChunkBytes + 1;
}

PackedStream::PackedStream(ContainerWriter& writer, std::size_t dataset,
                           int64_t dataset_file_offset, int64_t region_offset, int64_t region_bytes,
                           std::vector<std::byte>& buffer)
    : writer_(writer),
      dataset_(dataset),
      dataset_file_offset_(dataset_file_offset),
      next_offset_(region_offset),
      remaining_(region_bytes),
      buffer_(chunk_of(buffer, region_bytes)) {}

void PackedStream::add_region(const std::byte* buffer, const Box& buffer_box, const Box& region,
                              int64_t esize) {
  const int64_t bytes = region.volume() * esize;
  if (buffer_box == region) return add_bytes(buffer, bytes);
  // A region strided inside its buffer (not produced by today's plans, which pack whole boxes):
  // gathered first, then streamed like any other bytes.
  std::vector<std::byte> gathered(static_cast<std::size_t>(bytes));
  copy_region(buffer, buffer_box, gathered.data(), region, region, esize);
  add_bytes(gathered.data(), bytes);
}

void PackedStream::add_bytes(const std::byte* data, int64_t bytes) {
  if (bytes > remaining_)
    throw Error(ErrorCode::kInternal, "packed bytes exceed the planned region",
                {.operation = "save"});
  remaining_ -= bytes;
  while (bytes > 0) {
    const std::size_t room = capacity();
    const auto n =
        static_cast<std::size_t>(std::min<int64_t>(bytes, static_cast<int64_t>(room - filled_)));
    std::memcpy(buffer_.data() + filled_, data, n);
    filled_ += n;
    data += n;
    bytes -= static_cast<int64_t>(n);
    if (filled_ == room) flush();
  }
}

// The chunk ends at the next multiple of kChunkBytes in the file. A write that starts or ends
// elsewhere is put in the page cache in small pieces, which cost many times more per byte than the
// large ones an aligned write gets (measured in docs/performance.md, tenth round: W2's 16 MiB
// writes from unaligned region starts took 2-4x as long to copy into the page cache); and on a
// parallel file system whose stripe or block size divides kChunkBytes, no stripe or block is split
// between two of a rank's writes.
std::size_t PackedStream::capacity() const {
  const int64_t to_boundary = kChunkBytes - (dataset_file_offset_ + next_offset_) % kChunkBytes;
  return static_cast<std::size_t>(std::min<int64_t>(to_boundary, std::ssize(buffer_)));
}

void PackedStream::flush() {
  if (filled_ == 0) return;
  writer_.write_bytes(dataset_, next_offset_, buffer_.data(), static_cast<int64_t>(filled_));
  next_offset_ += static_cast<int64_t>(filled_);
  filled_ = 0;
  ++calls_;
}

int64_t PackedStream::finish() {
  if (remaining_ != 0)
    throw Error(ErrorCode::kInternal, "packed bytes fall short of the planned region",
                {.operation = "save"});
  flush();
  return calls_;
}

}  // namespace cairn::detail
