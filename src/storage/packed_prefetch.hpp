// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reading a rank's region of the packed dataset ahead of need. On a restore at the saved job
// size, each rank reads back the region it wrote; /cairn/packed_ranks (format 1.1) says where that
// region is without decoding the manifest. A helper thread reads it, in order, into a bounded ring
// of chunk buffers while the calling thread decodes the manifest, matches it against the live
// graph and plans the reads, work that otherwise leaves the disk idle. The bytes are verified
// against the manifest's checksums as they are consumed, like any other read. Once the reads are
// planned, the chunks not read yet go straight to the variables where a value is a plain copy,
// and the helper checksums each such value right after reading it (in small reads, so the bytes
// are still in cache); the consumer compares, instead of hashing them again from memory.
#include <sys/uio.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/transient_buffer.hpp"

namespace cairn::detail {

class PackedPrefetch {
 public:
  /// Starts reading bytes [begin, end) of the packed dataset, which starts at `file_offset` in the
  /// file at `path`, in chunks of `chunk_bytes`, at most `max_chunks` of them held at a time.
  /// Plain POSIX reads on a descriptor of its own: the helper thread makes no HDF5 or MPI call.
  PackedPrefetch(const std::string& path, int64_t file_offset, int64_t begin, int64_t end,
                 int64_t chunk_bytes, int max_chunks);
  PackedPrefetch(const PackedPrefetch&) = delete;
  PackedPrefetch& operator=(const PackedPrefetch&) = delete;
  /// Stops the helper after the read in flight, and joins it.
  ~PackedPrefetch();

  int64_t begin() const noexcept { return begin_; }
  int64_t end() const noexcept { return end_; }
  int64_t chunk_bytes() const noexcept { return chunk_bytes_; }
  std::size_t chunks() const noexcept { return chunks_; }
  /// The chunk holding packed offset `offset` (which must lie in [begin, end)).
  std::size_t chunk_of(int64_t offset) const noexcept {
    return static_cast<std::size_t>((offset - begin_) / chunk_bytes_);
  }
  int64_t chunk_start(std::size_t k) const noexcept {
    return begin_ + static_cast<int64_t>(k) * chunk_bytes_;
  }
  int64_t chunk_end(std::size_t k) const noexcept;

  /// No chunk after `k` will be asked for: the helper stops there.
  void stop_after(std::size_t k);
  /// Waits for chunk `k` (chunks are consumed in increasing order) and returns its bytes, or
  /// nullptr if it could not be read or was already released (the caller then reads those bytes
  /// the ordinary way, which reports the error properly if there is one).
  const std::byte* wait(std::size_t k);
  /// Chunk `k` (and every chunk before it) is done with: its buffer may be reused.
  void release(std::size_t k);

  /// Bytes [offset, offset + bytes) of the packed dataset that belong at `destination`.
  struct DirectRead {
    int64_t offset;
    int64_t bytes;
    std::byte* destination;
  };
  /// Called by the consumer (a later call is ignored). Every chunk the helper starts from now on is
  /// read with the bytes of `reads` going straight to their destinations and the rest into the
  /// chunk's buffer; direct(k) tells which chunks were. `reads` are sorted by offset, each inside
  /// one chunk, and overlap no other bytes any consumer takes from the ring (the buffer lacks
  /// them); their destinations must stay valid until the helper is stopped or has read their
  /// chunks. False (and nothing changes) if a list was given before, or without memory for it.
  bool read_directly(std::vector<DirectRead> reads);
  /// Whether waited-for chunk `k` was read with the direct reads.
  bool direct(std::size_t k);
  /// The checksum of direct read `i` (its place in the list given to read_directly()), computed by
  /// the helper right after reading it, while its bytes were still in cache. Valid once its chunk
  /// was waited for and direct() said so.
  uint64_t direct_checksum(std::size_t i) const noexcept { return direct_checksums_[i]; }
  /// The bytes of buffer the ring holds now: at most `max_chunks` chunks, and no more than the
  /// region itself when it is smaller than a chunk.
  std::size_t held_bytes();

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  void run();
  /// Reads chunk `k` into `iov` (`direct_of[i]`: the direct read that iov[i] is, or kNone) in parts
  /// of about kPartBytes, checksumming each direct read after its part; false if a read failed.
  bool read_parts(std::size_t k, std::vector<iovec>& iov,
                  const std::vector<std::size_t>& direct_of);

  int fd_ = -1;
  int64_t file_offset_;
  int64_t begin_;
  int64_t end_;
  int64_t chunk_bytes_;
  std::size_t chunks_;
  std::vector<TransientBuffer> ring_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t last_ = 0;      // the last chunk wanted
  std::size_t read_ = 0;      // chunks [0, read_) are read (or failed)
  std::size_t released_ = 0;  // chunks [0, released_) are done with
  std::vector<char> failed_;  // per chunk
  std::vector<char> direct_;  // per chunk: read with direct_reads_
  std::vector<DirectRead> direct_reads_;
  std::vector<uint64_t> direct_checksums_;  // per direct read, written by the helper
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::detail
