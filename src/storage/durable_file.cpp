// SPDX-License-Identifier: Apache-2.0
#include "storage/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cairn/core/error.hpp"

namespace cairn {
namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int err) {
  throw Error(ErrorCode::kIo, what + " '" + path + "': " + std::strerror(err),
              {.checkpoint = path, .operation = what});
}

class Fd {
 public:
  Fd(const std::string& path, int flags, mode_t mode = 0644)
      : fd_(::open(path.c_str(), flags, mode)) {
    if (fd_ < 0) io_error("open", path, errno);
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  void close_checked(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) io_error("close", path, errno);
  }

 private:
  int fd_;
};

}  // namespace

std::string parent_directory(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

int64_t free_bytes_for(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(parent_directory(path).c_str(), &fs) != 0 || fs.f_blocks == 0) return -1;
  // Root may also write into the blocks a file system reserves for it (ext4: 5% by default).
  const auto blocks = ::geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
  // Some FUSE mounts report an absurd capacity: saturated, not wrapped into a small number.
  int64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, fs.f_frsize, &bytes)) return INT64_MAX;
  return bytes;
}

void check_directory_usable(const std::string& path, const ErrorContext& ctx) {
  const std::string dir = parent_directory(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    throw Error(ErrorCode::kIo,
                "cannot create the checkpoint file: its directory '" + dir +
                    "' cannot be reached from this rank (" + std::strerror(err) + ")",
                ctx);
  }
  if (!S_ISDIR(st.st_mode))
    throw Error(ErrorCode::kIo,
                "cannot create the checkpoint file: '" + dir + "' is not a directory", ctx);
  // The effective user and its capabilities decide, as they will for the create (access() would
  // ask for the real user).
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    const int err = errno;
    throw Error(ErrorCode::kIo,
                "cannot create the checkpoint file: its directory '" + dir +
                    "' is not writable from this rank (" + std::strerror(err) + ")",
                ctx);
  }
}

void fsync_path(const std::string& path) {
  Fd fd(path, O_RDONLY);
  if (::fsync(fd.get()) != 0) io_error("fsync", path, errno);
}

void fsync_parent_directory(const std::string& path) {
  const std::string dir = parent_directory(path);
  Fd fd(dir, O_RDONLY | O_DIRECTORY);
  if (::fsync(fd.get()) != 0) io_error("fsync directory", dir, errno);
}

void durable_rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) io_error("rename to '" + to + "' from", from, errno);
  fsync_parent_directory(to);
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    Fd fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    const char* p = contents.data();
    std::size_t left = contents.size();
    while (left > 0) {
      ssize_t n = ::write(fd.get(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        io_error("write", tmp, errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) io_error("fsync", tmp, errno);
    fd.close_checked(tmp);
    durable_rename(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error("read", path, errno ? errno : ENOENT);
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) io_error("read", path, errno);
  return std::move(out).str();
}

}  // namespace cairn
