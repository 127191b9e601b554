// SPDX-License-Identifier: Apache-2.0
#include "storage/sparse_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "cairn/core/error.hpp"
#include "storage/durable_file.hpp"

namespace cairn::detail {
namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int err) {
  throw Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
              what + " '" + path + "': " + std::strerror(err));
}

void pread_all(int fd, const std::string& path, int64_t offset, std::byte* out, int64_t len) {
  while (len > 0) {
    const ssize_t n = ::pread(fd, out, static_cast<std::size_t>(len), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("read", path, errno);
    }
    if (n == 0)
      throw Error(ErrorCode::kIo, "read '" + path + "': the file ends at byte " +
                                      std::to_string(offset) + ", before the recorded extents do");
    out += n;
    offset += n;
    len -= n;
  }
}

void pwrite_all(int fd, const std::string& path, int64_t offset, const std::byte* data,
                int64_t len) {
  while (len > 0) {
    const ssize_t n = ::pwrite(fd, data, static_cast<std::size_t>(len), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("write", path, errno);
    }
    data += n;
    offset += n;
    len -= n;
  }
}

int create_temp(const std::string& temp) {
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("create", temp, errno);
  return fd;
}

void commit_temp(int& fd, const std::string& temp, const std::string& target) {
  if (::fsync(fd) != 0) io_error("fsync", temp, errno);
  const int closing = fd;
  fd = -1;
  if (::close(closing) != 0) io_error("close", temp, errno);
  durable_rename(temp, target);
}

void discard_temp(int fd, const std::string& temp) noexcept {
  if (fd >= 0) {
    ::close(fd);
    ::unlink(temp.c_str());
  }
}

}  // namespace

int64_t FileMap::stream_bytes() const noexcept {
  int64_t total = 0;
  for (const Extent& e : extents) total += e.length;
  return total;
}

InputFile::InputFile(const std::string& path)
    : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
  if (fd_ < 0) io_error("open", path, errno);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t InputFile::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) io_error("stat", path_, errno);
  return static_cast<int64_t>(st.st_size);
}

FileMap InputFile::map() const {
  FileMap map{.size = size(), .extents = {}};
  off_t at = 0;
  while (at < map.size) {
    const off_t data = ::lseek(fd_, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      // No SEEK_DATA here: the whole file is data.
      map.extents.assign(1, Extent{0, map.size});
      return map;
    }
    off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    if (hole < 0) hole = map.size;
    hole = std::min<off_t>(hole, map.size);
    if (!map.extents.empty() && map.extents.back().offset + map.extents.back().length == data)
      map.extents.back().length += hole - data;
    else if (hole > data)
      map.extents.push_back({data, hole - data});
    at = hole;
  }
  return map;
}

void InputFile::read_at(int64_t offset, std::byte* out, int64_t len) const {
  pread_all(fd_, path_, offset, out, len);
}

namespace {

// Calls `fn(file_offset, done, take)` for each file range holding stream bytes [pos, pos + len)
// of `map`, in order (`done`: bytes of the request before this range). Returns the bytes covered:
// less than `len` past the end of the stream.
template <class Fn>
int64_t for_each_range(const FileMap& map, int64_t pos, int64_t len, Fn&& fn) {
  int64_t base = 0, done = 0;  // base: stream position of the current extent
  for (const Extent& e : map.extents) {
    if (done == len) break;
    if (pos + done < base + e.length) {
      const int64_t skip = pos + done - base;
      const int64_t take = std::min(len - done, e.length - skip);
      fn(e.offset + skip, done, take);
      done += take;
    }
    base += e.length;
  }
  return done;
}

}  // namespace

void InputFile::read_stream(const FileMap& map, int64_t pos, std::byte* out, int64_t len) const {
  const int64_t done = for_each_range(map, pos, len, [&](int64_t at, int64_t into, int64_t take) {
    pread_all(fd_, path_, at, out + into, take);
  });
  std::memset(out + done, 0, static_cast<std::size_t>(len - done));
}

uint64_t InputFile::stream_checksum(const FileMap& map, int64_t block) const {
  ChecksumStream hash;
  const int64_t total = map.stream_bytes();
  const auto buffer =
      std::make_unique_for_overwrite<std::byte[]>(static_cast<std::size_t>(std::min(block, total)));
  for (int64_t at = 0; at < total; at += block) {
    const int64_t len = std::min(block, total - at);
    read_stream(map, at, buffer.get(), len);
    hash.update(buffer.get(), static_cast<std::size_t>(len));
  }
  return hash.digest();
}

bool InputFile::zero_outside(const FileMap& map, int64_t block) const {
  const FileMap now = this->map();
  std::unique_ptr<std::byte[]> buffer;
  // The parts of `now`'s extents that no extent of `map` covers.
  for (const Extent& e : now.extents) {
    int64_t at = e.offset;
    const int64_t end = e.offset + e.length;
    while (at < end) {
      int64_t until = end;
      bool covered = false;
      for (const Extent& r : map.extents) {
        if (r.offset <= at && at < r.offset + r.length) {
          covered = true;
          until = std::min(end, r.offset + r.length);
          break;
        }
        if (r.offset > at) {
          until = std::min(end, r.offset);
          break;
        }
      }
      if (!covered) {
        if (!buffer)
          buffer = std::make_unique_for_overwrite<std::byte[]>(static_cast<std::size_t>(block));
        for (int64_t p = at; p < until; p += block) {
          const int64_t len = std::min(block, until - p);
          pread_all(fd_, path_, p, buffer.get(), len);
          if (std::any_of(buffer.get(), buffer.get() + len,
                          [](std::byte b) { return b != std::byte{0}; }))
            return false;
        }
      }
      at = until;
    }
  }
  return true;
}

StreamWriter::StreamWriter(std::string target, FileMap map)
    : target_(std::move(target)), temp_(target_ + ".tmp"), map_(std::move(map)) {
  fd_ = create_temp(temp_);
}

StreamWriter::~StreamWriter() {
  discard_temp(fd_, temp_);
}

void StreamWriter::write(const std::byte* data, int64_t len) {
  len = std::min(len, map_.stream_bytes() - pos_);
  if (len <= 0) return;
  hash_.update(data, static_cast<std::size_t>(len));
  pos_ += for_each_range(map_, pos_, len, [&](int64_t at, int64_t from, int64_t take) {
    pwrite_all(fd_, temp_, at, data + from, take);
  });
}

uint64_t StreamWriter::checksum() const noexcept {
  return hash_.digest();
}

void StreamWriter::commit() {
  if (::ftruncate(fd_, static_cast<off_t>(map_.size)) != 0) io_error("truncate", temp_, errno);
  commit_temp(fd_, temp_, target_);
}

DenseWriter::DenseWriter(std::string target) : target_(std::move(target)), temp_(target_ + ".tmp") {
  fd_ = create_temp(temp_);
}

DenseWriter::~DenseWriter() {
  discard_temp(fd_, temp_);
}

void DenseWriter::write(const std::byte* data, int64_t len) {
  hash_.update(data, static_cast<std::size_t>(len));
  const off_t at = ::lseek(fd_, 0, SEEK_CUR);
  if (at < 0) io_error("seek", temp_, errno);
  pwrite_all(fd_, temp_, at, data, len);
  if (::lseek(fd_, at + len, SEEK_SET) < 0) io_error("seek", temp_, errno);
}

void DenseWriter::commit() {
  commit_temp(fd_, temp_, target_);
}

uint64_t dense_checksum(const InputFile& file, int64_t size, int64_t block) {
  const FileMap whole{.size = size, .extents = {Extent{0, size}}};
  return file.stream_checksum(whole, block);
}

}  // namespace cairn::detail
