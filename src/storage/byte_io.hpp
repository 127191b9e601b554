// SPDX-License-Identifier: Apache-2.0
#pragma once
// Little-endian fixed-width fields of the format 2.x table and records, written and read byte by
// byte so that the encoding does not depend on the host's byte order or struct layout. The
// reader is bounded: a read past the end calls the owner's failure (a kCorrupt naming the file).
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cairn::detail {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void zeros(std::size_t n) { out_.append(n, '\0'); }
  void bytes(std::string_view b) { out_.append(b); }
  /// Room for `n` bytes in all: an encoder that knows its size spares the output's regrowth
  /// (each a copy into fresh memory, megabytes for a large table).
  void reserve(std::size_t n) { out_.reserve(n); }
  std::size_t size() const noexcept { return out_.size(); }
  std::string& str() noexcept { return out_; }
  /// Overwrites 8 bytes at `at` (already written) with `v`.
  void put_u64(std::size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string out_;
};

class ByteReader {
 public:
  /// `fail` must throw; it receives a description of the read that went out of bounds.
  ByteReader(std::string_view bytes, std::function<void(const std::string&)> fail)
      : bytes_(bytes), fail_(std::move(fail)) {}

  std::size_t size() const noexcept { return bytes_.size(); }
  uint8_t u8(uint64_t at) const { return static_cast<uint8_t>(le(at, 1)); }
  uint16_t u16(uint64_t at) const { return static_cast<uint16_t>(le(at, 2)); }
  uint32_t u32(uint64_t at) const { return static_cast<uint32_t>(le(at, 4)); }
  uint64_t u64(uint64_t at) const { return le(at, 8); }
  int64_t i64(uint64_t at) const { return static_cast<int64_t>(le(at, 8)); }
  std::string_view view(uint64_t at, uint64_t n) const {
    check(at, n);
    return bytes_.substr(static_cast<std::size_t>(at), static_cast<std::size_t>(n));
  }

 private:
  void check(uint64_t at, uint64_t n) const {
    if (at > bytes_.size() || n > bytes_.size() - at) {
      fail_("reading " + std::to_string(n) + " bytes at offset " + std::to_string(at) +
            " runs past the end (" + std::to_string(bytes_.size()) + " bytes)");
      throw std::logic_error("ByteReader: the failure handler returned");  // unreachable
    }
  }
  uint64_t le(uint64_t at, int n) const {
    check(at, static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(
               bytes_[static_cast<std::size_t>(at) + static_cast<std::size_t>(i)]))
           << (8 * i);
    return v;
  }
  std::string_view bytes_;
  std::function<void(const std::string&)> fail_;
};

}  // namespace cairn::detail
