// SPDX-License-Identifier: Apache-2.0
// TransientBuffer: the read-ahead's and the node share's large buffers. What can fail here is the
// alignment that lets the kernel back them with huge pages, and their use as plain memory.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "core/transient_buffer.hpp"

namespace cairn::detail {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

TEST(TransientBuffer, LargeBuffersStartOnAHugePageBoundary) {
  for (const std::size_t size : {kHugePage, kHugePage + 1, std::size_t{16} << 20}) {
    TransientBuffer b(size);
    ASSERT_TRUE(b);
    EXPECT_EQ(b.size(), size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kHugePage, 0u) << size;
    std::memset(b.data(), 0x5a, size);  // every byte is ours
    EXPECT_EQ(b.data()[size - 1], std::byte{0x5a});
  }
}

TEST(TransientBuffer, SmallAndEmptyBuffersAreOrdinaryMemory) {
  TransientBuffer empty;
  EXPECT_FALSE(empty);
  EXPECT_EQ(empty.size(), 0u);
  TransientBuffer none(0);
  EXPECT_FALSE(none);
  TransientBuffer small(100);
  ASSERT_TRUE(small);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small.data()) % alignof(std::max_align_t), 0u);
  std::memset(small.data(), 1, 100);
}

TEST(TransientBuffer, ASizeThatCannotBeRoundedIsRefused) {
  EXPECT_THROW(TransientBuffer(SIZE_MAX), std::bad_alloc);
  EXPECT_THROW(TransientBuffer(SIZE_MAX - kHugePage), std::bad_alloc);
}

TEST(TransientBuffer, MovesHandOverTheMemory) {
  TransientBuffer a(kHugePage);
  std::byte* data = a.data();
  TransientBuffer b = std::move(a);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.size(), kHugePage);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(a.size(), 0u);
  TransientBuffer c(100);
  c = std::move(b);  // the small buffer is freed, the large one handed over
  EXPECT_EQ(c.data(), data);
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace cairn::detail
