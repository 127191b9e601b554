// SPDX-License-Identifier: Apache-2.0
#pragma once
// A file as its data extents (lseek SEEK_DATA/SEEK_HOLE), read and written as one "stream": the
// bytes of its extents in order, without the holes. Redundancy copies and XORs streams, so a
// sparse 64 MiB file with two small extents costs only those extents.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/checksum.hpp"

namespace cairn::detail {

struct Extent {
  int64_t offset = 0;
  int64_t length = 0;
  bool operator==(const Extent&) const = default;
};

/// A file's logical size and data extents (ascending, disjoint, not adjacent).
struct FileMap {
  int64_t size = 0;
  std::vector<Extent> extents;
  /// Bytes of the stream: the extents' total length.
  int64_t stream_bytes() const noexcept;
  bool operator==(const FileMap&) const = default;
};

/// A file opened for reading, closed on destruction.
class InputFile {
 public:
  /// Local. Throws cairn::Error(kNotFound or kIo) naming the path.
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Local. The file's size and extents; a file system without SEEK_DATA gives one extent.
  FileMap map() const;
  /// Local. Bytes [pos, pos + len) of the stream of `map` (this file read at those extents);
  /// bytes past the stream's end are zeros (XOR padding). Throws kIo on a short file.
  void read_stream(const FileMap& map, int64_t pos, std::byte* out, int64_t len) const;
  /// Local. XXH3-64 of the stream of `map`, read in blocks of `block` bytes.
  uint64_t stream_checksum(const FileMap& map, int64_t block) const;
  /// Local. True if every data byte of this file outside the extents of `map` is zero, so the
  /// file's content equals `map`'s stream laid out at its extents with holes elsewhere.
  bool zero_outside(const FileMap& map, int64_t block) const;
  /// Local. Reads `len` bytes at `offset`; kIo on a short read.
  void read_at(int64_t offset, std::byte* out, int64_t len) const;
  /// Local. The file's size now.
  int64_t size() const;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

/// Writes a stream into a new file at the extents of a map, in order, through a temporary file in
/// the target's directory; commit() gives it the map's size, fsyncs it and renames it over the
/// target. Destroyed uncommitted, it removes the temporary file.
class StreamWriter {
 public:
  /// Local. Creates `target` + ".tmp".
  StreamWriter(std::string target, FileMap map);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  /// Local. The next `len` bytes of the stream (bytes past its end are ignored: XOR padding).
  void write(const std::byte* data, int64_t len);
  /// Local. Stream bytes written so far, and their XXH3-64 (all of them once complete).
  int64_t written() const noexcept { return pos_; }
  uint64_t checksum() const noexcept;
  /// Local. Sets the size, fsyncs, closes, renames onto the target and fsyncs the directory.
  void commit();
  const std::string& target() const noexcept { return target_; }

 private:
  std::string target_, temp_;
  FileMap map_;
  int fd_ = -1;
  int64_t pos_ = 0;
  ChecksumStream hash_;
};

/// Local. A dense file written in order through a temporary file, with its XXH3-64 (parity).
class DenseWriter {
 public:
  explicit DenseWriter(std::string target);
  ~DenseWriter();
  DenseWriter(const DenseWriter&) = delete;
  DenseWriter& operator=(const DenseWriter&) = delete;
  void write(const std::byte* data, int64_t len);
  uint64_t checksum() const noexcept { return hash_.digest(); }
  void commit();

 private:
  std::string target_, temp_;
  int fd_ = -1;
  ChecksumStream hash_;
};

/// Local. XXH3-64 of the first `size` bytes of a dense file.
uint64_t dense_checksum(const InputFile& file, int64_t size, int64_t block);

}  // namespace cairn::detail
