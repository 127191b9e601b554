// SPDX-License-Identifier: Apache-2.0
// The read-ahead hands out exactly the file's bytes, chunk after chunk, and holds no more buffer
// than its ring, nor more than a region smaller than one chunk; once given direct reads, the chunks
// it has not started put those bytes at their destinations, with their checksums, and the rest in
// the chunk.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

#include "storage/checksum.hpp"
#include "storage/packed_prefetch.hpp"
#include "support/test_support.hpp"

namespace cairn::detail {
namespace {

// A file of `bytes` bytes, byte i being a function of i; returns its path.
std::string patterned_file(const std::string& dir, int64_t bytes) {
  const std::string path = dir + "/packed.bin";
  std::vector<char> data(static_cast<std::size_t>(bytes));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + 7) % 251);
  std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(bytes));
  return path;
}

char expected(int64_t file_offset) {
  return static_cast<char>((file_offset * 131 + 7) % 251);
}

TEST(PackedPrefetch, ARegionSmallerThanAChunkHoldsOnlyItsBytes) {
  const std::string path = patterned_file(testing::scratch_dir(), 100000);
  // A 16 MiB chunk size, as restores use, for a region of 10,000 bytes starting at 4,096 of the
  // packed dataset, which starts at byte 1,000 of the file.
  PackedPrefetch ahead(path, 1000, 4096, 14096, int64_t{16} << 20, 4);
  ASSERT_EQ(ahead.chunks(), 1u);
  const std::byte* chunk = ahead.wait(0);
  ASSERT_NE(chunk, nullptr);
  for (int64_t i = 0; i < 10000; ++i)
    ASSERT_EQ(static_cast<char>(chunk[i]), expected(1000 + 4096 + i)) << "byte " << i;
  EXPECT_EQ(ahead.held_bytes(), 10000u);
  ahead.release(0);
}

TEST(PackedPrefetch, ChunksComeInOrderThroughABoundedRing) {
  const int64_t chunk = int64_t{1} << 20;
  const int64_t region = 5 * chunk / 2;  // two whole chunks and a half
  const std::string path = patterned_file(testing::scratch_dir(), region + 512);
  PackedPrefetch ahead(path, 512, 0, region, chunk, 2);
  ASSERT_EQ(ahead.chunks(), 3u);
  for (std::size_t k = 0; k < ahead.chunks(); ++k) {
    const std::byte* bytes = ahead.wait(k);
    ASSERT_NE(bytes, nullptr) << "chunk " << k;
    for (int64_t i = 0; i < ahead.chunk_end(k) - ahead.chunk_start(k); i += 997)
      ASSERT_EQ(static_cast<char>(bytes[i]), expected(512 + ahead.chunk_start(k) + i))
          << "chunk " << k << " byte " << i;
    EXPECT_LE(ahead.held_bytes(), static_cast<std::size_t>(2 * chunk)) << "chunk " << k;
    ahead.release(k);
  }
  EXPECT_EQ(ahead.wait(0), nullptr);  // released: its buffer may hold a later chunk
}

TEST(PackedPrefetch, DirectReadsLandAtTheirDestinationsWithTheirChecksumsInTheChunksReadAfterThem) {
  const int64_t chunk = int64_t{1} << 20;
  const int64_t region = 3 * chunk;
  const std::string path = patterned_file(testing::scratch_dir(), region + 100);
  // One chunk at a time: the helper reads chunk 0 and waits for it to be released.
  PackedPrefetch ahead(path, 100, 0, region, chunk, 1);
  ASSERT_EQ(ahead.chunks(), 3u);
  const std::byte* first = ahead.wait(0);
  ASSERT_NE(first, nullptr);
  // Chunk 0 (read already) and chunk 1 get a few reads each, one larger than the parts the helper
  // reads at a time; chunk 2 gets 3,000 of 7 bytes every 300 bytes, more than one preadv takes
  // (IOV_MAX buffers), over several parts.
  std::vector<std::vector<std::byte>> destinations;
  std::vector<PackedPrefetch::DirectRead> reads;
  auto add = [&](int64_t offset, int64_t bytes) {
    destinations.emplace_back(static_cast<std::size_t>(bytes), std::byte{0});
    reads.push_back({offset, bytes, destinations.back().data()});
  };
  destinations.reserve(3010);
  add(10, 100);
  add(chunk + 5, 4000);
  add(chunk + 4005, 1);  // adjacent to the one before
  add(chunk + 100000, 600000);
  add(2 * chunk - 300, 300);  // ends where the chunk ends
  for (int64_t i = 0; i < 3000; ++i) add(2 * chunk + 17 + 300 * i, 7);
  ahead.read_directly(reads);
  EXPECT_FALSE(ahead.direct(0));
  ahead.release(0);
  for (std::size_t k = 1; k < 3; ++k) {
    const std::byte* bytes = ahead.wait(k);
    ASSERT_NE(bytes, nullptr) << "chunk " << k;
    EXPECT_TRUE(ahead.direct(k)) << "chunk " << k;
    // The bytes between the direct reads are in the chunk's buffer.
    const int64_t start = ahead.chunk_start(k);
    std::vector<char> direct(static_cast<std::size_t>(chunk), 0);
    for (const auto& r : reads)
      if (r.offset >= start && r.offset < start + chunk)
        std::fill_n(direct.begin() + (r.offset - start), r.bytes, 1);
    for (int64_t i = 0; i < chunk; ++i) {
      if (direct[static_cast<std::size_t>(i)]) continue;
      ASSERT_EQ(static_cast<char>(bytes[i]), expected(100 + start + i))
          << "chunk " << k << " byte " << i;
    }
    ahead.release(k);
  }
  // Chunk 0 was read before: its direct read's destination was left alone.
  EXPECT_EQ(destinations[0], std::vector<std::byte>(100, std::byte{0}));
  for (std::size_t d = 1; d < reads.size(); ++d) {
    for (int64_t i = 0; i < reads[d].bytes; ++i)
      ASSERT_EQ(static_cast<char>(destinations[d][static_cast<std::size_t>(i)]),
                expected(100 + reads[d].offset + i))
          << "read " << d << " byte " << i;
    EXPECT_EQ(ahead.direct_checksum(d),
              checksum_bytes(destinations[d].data(), destinations[d].size()))
        << "read " << d;
  }
}

}  // namespace
}  // namespace cairn::detail
