// SPDX-License-Identifier: Apache-2.0
// checksum_region must equal the checksum of the region copied out, for any region of any box.
#include <gtest/gtest.h>
#include <xxhash.h>  // the plain XXH3 build, without the run-time choice of vector unit

#include <random>
#include <vector>

#include "storage/checksum.hpp"

namespace cairn {
namespace {

TEST(Checksum, RegionEqualsChecksumOfCopiedRegion) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t rank = 1 + rng() % 4;
    Box buffer_box, region;
    for (std::size_t d = 0; d < rank; ++d) {
      const int64_t extent = 1 + static_cast<int64_t>(rng() % 6);
      buffer_box.offset.push_back(static_cast<int64_t>(rng() % 5));
      buffer_box.count.push_back(extent);
      const int64_t start = static_cast<int64_t>(rng() % static_cast<unsigned>(extent));
      const int64_t count = 1 + static_cast<int64_t>(rng() % static_cast<unsigned>(extent - start));
      region.offset.push_back(buffer_box.offset[d] + start);
      region.count.push_back(count);
    }
    const int64_t esize = 1 + rng() % 8;
    std::vector<unsigned char> buffer(static_cast<std::size_t>(buffer_box.volume() * esize));
    for (auto& b : buffer) b = static_cast<unsigned char>(rng());
    std::vector<unsigned char> copy(static_cast<std::size_t>(region.volume() * esize));
    copy_region(buffer.data(), buffer_box, copy.data(), region, region, esize);
    EXPECT_EQ(checksum_region(buffer.data(), buffer_box, region, esize),
              checksum_bytes(copy.data(), copy.size()))
        << "buffer " << buffer_box.to_string() << " region " << region.to_string();
  }
}

// The format defines checksums as XXH3-64 (seed 0); cairn may compute them with AVX2 or AVX-512
// where the CPU has them. Every length class of XXH3 (0, 1-3, 4-8, 9-16, 17-128, 129-240, longer,
// across its 1 KiB stripes and block boundaries) must give the plain build's value, whole or in
// parts.
TEST(Checksum, EqualsPlainXxh3AtEveryLengthWholeAndInParts) {
  EXPECT_EQ(checksum_bytes(nullptr, 0), 0x2D06800538D394C2ull);  // XXH3-64 of no bytes
  std::mt19937 rng(11);
  std::vector<unsigned char> bytes((std::size_t{1} << 20) + 4099);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (std::size_t n : {1023u, 1024u, 1025u, 4096u, 4099u, 65536u + 17u}) lengths.push_back(n);
  lengths.push_back(bytes.size());
  for (std::size_t n : lengths) {
    const std::size_t start = n < bytes.size() ? rng() % (bytes.size() - n) : 0;
    const unsigned char* p = bytes.data() + start;
    const uint64_t plain = XXH3_64bits(p, n);
    EXPECT_EQ(checksum_bytes(p, n), plain) << n << " bytes";
    ChecksumStream stream;
    for (std::size_t at = 0; at < n;) {
      const std::size_t part = std::min<std::size_t>(n - at, 1 + rng() % 5000);
      stream.update(p + at, part);
      at += part;
    }
    EXPECT_EQ(stream.digest(), plain) << n << " bytes in parts";
  }
}

TEST(Checksum, TheAvx2BuildIsUsedWhereTheCpuHasAvx2) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  EXPECT_EQ(checksum_uses_avx2(), __builtin_cpu_supports("avx2") != 0);
#else
  EXPECT_FALSE(checksum_uses_avx2());
#endif
}

TEST(Checksum, HexRoundTripAndRejection) {
  uint64_t v = 0;
  EXPECT_TRUE(checksum_from_hex(checksum_to_hex(0xdeadbeef00112233ull), v));
  EXPECT_EQ(v, 0xdeadbeef00112233ull);
  EXPECT_FALSE(checksum_from_hex("DEADBEEF00112233", v));  // lowercase only
  EXPECT_FALSE(checksum_from_hex("123", v));
}

TEST(Checksum, ScalarRegion) {
  double x = 3.5;
  EXPECT_EQ(checksum_region(&x, Box{}, Box{}, 8), checksum_bytes(&x, 8));
}

}  // namespace
}  // namespace cairn
