// SPDX-License-Identifier: Apache-2.0
#include "storage/packed_prefetch.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>

#include "storage/checksum.hpp"

namespace cairn::detail {

PackedPrefetch::PackedPrefetch(const std::string& path, int64_t file_offset, int64_t begin,
                               int64_t end, int64_t chunk_bytes, int max_chunks)
    : file_offset_(file_offset),
      begin_(begin),
      end_(std::max(begin, end)),
      chunk_bytes_(std::max<int64_t>(chunk_bytes, 1)),
      chunks_(static_cast<std::size_t>((end_ - begin_ + chunk_bytes_ - 1) / chunk_bytes_)),
      ring_(static_cast<std::size_t>(std::max(max_chunks, 1))),
      failed_(chunks_, 0),
      direct_(chunks_, 0) {
  if (chunks_ == 0) return;
  last_ = chunks_ - 1;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    std::fill(failed_.begin(), failed_.end(), 1);
    read_ = chunks_;
    return;
  }
  thread_ = std::thread([this] { run(); });
}

PackedPrefetch::~PackedPrefetch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

int64_t PackedPrefetch::chunk_end(std::size_t k) const noexcept {
  return std::min(end_, chunk_start(k) + chunk_bytes_);
}

void PackedPrefetch::stop_after(std::size_t k) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_ = std::min(last_, k);
  }
  changed_.notify_all();
}

const std::byte* PackedPrefetch::wait(std::size_t k) {
  std::unique_lock<std::mutex> lock(mutex_);
  // A released chunk's buffer may already hold a later chunk.
  if (k >= chunks_ || k > last_ || k < released_) return nullptr;
  changed_.wait(lock, [&] { return read_ > k; });
  if (failed_[k]) return nullptr;
  return ring_[k % ring_.size()].data();
}

void PackedPrefetch::release(std::size_t k) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = std::max(released_, k + 1);
  }
  changed_.notify_all();
}

bool PackedPrefetch::read_directly(std::vector<DirectRead> reads) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Once only: the helper may be reading a chunk with the list it took.
  if (!direct_reads_.empty()) return false;
  try {
    direct_checksums_.assign(reads.size(), 0);
  } catch (const std::bad_alloc&) {
    return false;  // no direct reads: the values are copied out of the chunks as before
  }
  direct_reads_ = std::move(reads);
  return true;
}

bool PackedPrefetch::direct(std::size_t k) {
  std::lock_guard<std::mutex> lock(mutex_);
  return k < chunks_ && direct_[k];
}

namespace {

// A chunk is read in parts of about this many bytes: a direct read's bytes are checksummed just
// after its part is read, from the cache (2-3 times faster here than from memory).
constexpr std::size_t kPartBytes = std::size_t{256} << 10;

// Fills the buffers iov[0, count), in order, from file offset `offset`; false on an error or end
// of file.
bool read_vector(int fd, iovec* iov, std::size_t count, int64_t offset) {
  std::size_t first = 0;
  while (first < count) {
    const int n_iov = static_cast<int>(std::min<std::size_t>(count - first, IOV_MAX));
    const ssize_t n = ::preadv(fd, &iov[first], n_iov, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    offset += n;
    // Skip the buffers filled; a partly filled one continues where it stopped.
    for (auto left = static_cast<std::size_t>(n); left > 0;) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
    while (first < count && iov[first].iov_len == 0) ++first;
  }
  return true;
}

}  // namespace

std::size_t PackedPrefetch::held_bytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t bytes = 0;
  for (const TransientBuffer& slot : ring_) bytes += slot.size();
  return bytes;
}

bool PackedPrefetch::read_parts(std::size_t k, std::vector<iovec>& iov,
                                const std::vector<std::size_t>& direct_of) {
  int64_t offset = file_offset_ + chunk_start(k);
  std::vector<iovec> part;
  for (std::size_t first = 0; first < iov.size();) {
    // Whole buffers only, at least one: a value larger than a part is read (and hashed) alone.
    std::size_t last = first, bytes = 0;
    do bytes += iov[last++].iov_len;
    while (last < iov.size() && bytes + iov[last].iov_len <= kPartBytes);
    // Their sizes before read_vector() consumes them.
    part.assign(iov.begin() + static_cast<std::ptrdiff_t>(first),
                iov.begin() + static_cast<std::ptrdiff_t>(last));
    // Nothing to read is not an end of file (preadv returns 0 for it).
    if (bytes > 0 && !read_vector(fd_, iov.data() + first, last - first, offset)) return false;
    for (std::size_t i = first; i < last; ++i)
      if (direct_of[i] != kNone)
        direct_checksums_[direct_of[i]] =
            checksum_bytes(part[i - first].iov_base, part[i - first].iov_len);
    offset += static_cast<int64_t>(bytes);
    first = last;
  }
  return true;
}

void PackedPrefetch::run() {
  std::vector<iovec> iov;
  std::vector<std::size_t> direct_of;  // per iov: its direct read, or kNone (the chunk's buffer)
  for (std::size_t k = 0; k < chunks_; ++k) {
    std::byte* buffer = nullptr;
    const DirectRead* first_direct = nullptr;
    const DirectRead* last_direct = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || k > last_ || k < released_ + ring_.size(); });
      if (stop_ || k > last_) break;
      if (k < released_) {  // released unread: nobody needs it
        failed_[k] = 1;
        read_ = k + 1;
        continue;
      }
      auto& slot = ring_[k % ring_.size()];
      // Sized to the chunk, not to the chunk size: a region smaller than one chunk (every rank's
      // at many ranks) must not map and fault a huge page per rank for a few kilobytes.
      const auto needed = static_cast<std::size_t>(chunk_end(k) - chunk_start(k));
      try {
        if (slot.size() < needed) slot = TransientBuffer(needed);
      } catch (const std::bad_alloc&) {
        break;  // no memory for a read-ahead: the consumer reads the rest itself
      }
      buffer = slot.data();
      // The direct reads inside this chunk; the list no longer changes once set.
      first_direct = std::lower_bound(
          direct_reads_.data(), direct_reads_.data() + direct_reads_.size(), chunk_start(k),
          [](const DirectRead& r, int64_t offset) { return r.offset < offset; });
      last_direct = first_direct;
      while (last_direct != direct_reads_.data() + direct_reads_.size() &&
             last_direct->offset + last_direct->bytes <= chunk_end(k))
        ++last_direct;
    }
    // Outside the lock: the consumer works on earlier chunks meanwhile. The chunk is read in
    // order: its direct reads' bytes into their destinations, the bytes between them into the
    // buffer.
    bool ok = false;
    try {
      iov.clear();
      direct_of.clear();
      int64_t at = chunk_start(k);
      auto to_buffer = [&](int64_t until) {
        if (until > at) {
          iov.push_back({buffer + (at - chunk_start(k)), static_cast<std::size_t>(until - at)});
          direct_of.push_back(kNone);
        }
      };
      for (const DirectRead* r = first_direct; r != last_direct; ++r) {
        to_buffer(r->offset);
        iov.push_back({r->destination, static_cast<std::size_t>(r->bytes)});
        direct_of.push_back(static_cast<std::size_t>(r - direct_reads_.data()));
        at = r->offset + r->bytes;
      }
      to_buffer(chunk_end(k));
      ok = read_parts(k, iov, direct_of);
    } catch (const std::bad_alloc&) {
      // Failed like a read: the consumer reads this chunk's requests the ordinary way.
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      failed_[k] = ok ? 0 : 1;
      direct_[k] = first_direct != last_direct ? 1 : 0;
      read_ = k + 1;
    }
    changed_.notify_all();
  }
  // Chunks never read (stopped) count as failed, so that nobody waits for them.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t k = read_; k < chunks_; ++k) failed_[k] = 1;
    read_ = chunks_;
  }
  changed_.notify_all();
}

}  // namespace cairn::detail
