// SPDX-License-Identifier: Apache-2.0
#include "storage/tensor_read.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>

#include "core/transient_buffer.hpp"
#include "storage/checksum.hpp"
#include "storage/overlapped_checks.hpp"

namespace cairn::detail {
namespace {

// Gaps between packed requests are read through rather than split into two reads when they are
// small, or (up to the larger bound) no larger than the useful bytes of the window so far: dense
// runs become one read, while values scattered thinly over another rank's region (replicated
// tensors that rank wrote) are read alone instead of dragging its whole region through memory.
constexpr int64_t kSmallGapBytes = int64_t{32} << 10;
constexpr int64_t kMaxGapBytes = int64_t{1} << 20;
// Packed reads go in windows of at most this size (or the staging bound, if smaller).
constexpr int64_t kWindowBytes = int64_t{16} << 20;
// Pieces read in place go in blocks of at most this size (or one piece, if larger).
constexpr int64_t kBlockBytes = int64_t{16} << 20;

[[noreturn]] void checksum_mismatch(const ContainerReader& reader, const std::string& key,
                                    const std::string& piece, uint64_t expected, uint64_t found) {
  throw Error(ErrorCode::kCorrupt,
              "checksum mismatch in piece " + piece + ": expected " + checksum_to_hex(expected) +
                  ", found " + checksum_to_hex(found) + " (the data on disk is damaged)",
              {.rank = reader.rank(),
               .checkpoint = reader.path(),
               .key = key,
               .box = piece,
               .operation = "verify"});
}

thread_local PackedReadStats last_stats;

}  // namespace

PackedReadStats last_packed_read_stats() noexcept {
  return last_stats;
}

void PackedReadBatch::add(int64_t offset, int64_t bytes, uint64_t checksum, const std::string* key,
                          const Box* piece, int blob_rank, Consumer consume) {
  requests_.push_back(
      {offset, bytes, checksum, key, piece, blob_rank, nullptr, std::move(consume)});
}

void PackedReadBatch::add_copy(int64_t offset, int64_t bytes, uint64_t checksum,
                               const std::string* key, const Box* piece, std::byte* destination) {
  requests_.push_back({offset, bytes, checksum, key, piece, -1, destination, {}});
}

void PackedReadBatch::verify(const ContainerReader& reader, const Request& r,
                             const std::byte* bytes) {
  verify_checksum(reader, r, checksum_bytes(bytes, static_cast<std::size_t>(r.bytes)));
}

void PackedReadBatch::verify_checksum(const ContainerReader& reader, const Request& r,
                                      uint64_t found) {
  if (found != r.checksum)
    checksum_mismatch(
        reader, *r.key,
        r.piece ? r.piece->to_string() : "rank " + std::to_string(r.blob_rank) + " value",
        r.checksum, found);
}

void PackedReadBatch::verify_and_consume(const ContainerReader& reader, Request& r,
                                         const std::byte* bytes) {
  verify(reader, r, bytes);
  if (r.destination)
    std::memcpy(r.destination, bytes, static_cast<std::size_t>(r.bytes));
  else
    r.consume(bytes);
}

void PackedReadBatch::plan_direct_reads(PackedPrefetch& prefetch) {
  // A copy qualifies when it lies inside one chunk and shares no byte with any other request:
  // the chunk's buffer will not hold its bytes.
  std::vector<PackedPrefetch::DirectRead> reads;
  std::vector<std::size_t> planned;                          // their requests
  int64_t end_before = std::numeric_limits<int64_t>::min();  // of the requests before r
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    Request& r = requests_[i];
    const int64_t end = r.offset + r.bytes;
    const bool alone =
        r.offset >= end_before && (i + 1 == requests_.size() || requests_[i + 1].offset >= end);
    end_before = std::max(end_before, end);
    if (!r.destination || r.bytes <= 0 || !alone || r.offset < prefetch.begin() ||
        end > prefetch.end() || end > prefetch.chunk_end(prefetch.chunk_of(r.offset)))
      continue;
    planned.push_back(i);
    reads.push_back({r.offset, r.bytes, r.destination});
  }
  if (reads.empty() || !prefetch.read_directly(std::move(reads))) return;
  for (std::size_t j = 0; j < planned.size(); ++j) requests_[planned[j]].direct_index = j;
}

void PackedReadBatch::consume_prefetched(ContainerReader& reader, PackedPrefetch& prefetch,
                                         bool last_use) {
  // Requests that lie inside one chunk of the read-ahead are served from it, chunk by chunk, while
  // the helper reads the next ones; the rest stay queued for the windows below.
  auto inside = [&](const Request& r) {
    if (r.offset < prefetch.begin() || r.offset >= prefetch.end()) return false;
    return r.offset + r.bytes <= prefetch.chunk_end(prefetch.chunk_of(r.offset));
  };
  std::size_t last = 0;
  bool any = false;
  for (const Request& r : requests_)
    if (inside(r)) last = std::max(last, prefetch.chunk_of(r.offset)), any = true;
  if (!any) return;
  if (last_use) {
    prefetch.stop_after(last);
    // Only when no later batch uses the read-ahead: it could want bytes the buffers lack.
    if (direct_reads_allowed_) plan_direct_reads(prefetch);
  }
  std::vector<Request> rest;
  std::size_t k = 0;
  const std::byte* chunk = nullptr;
  bool waited = false, direct = false;
  for (Request& r : requests_) {
    if (!inside(r)) {
      rest.push_back(std::move(r));
      continue;
    }
    const std::size_t c = prefetch.chunk_of(r.offset);
    if (!waited || c != k) {
      // Everything before this chunk is done with, including chunks nothing needed: the helper
      // skips those rather than filling its ring with them while this thread waits.
      if (c > 0) prefetch.release(c - 1);
      k = c;
      chunk = prefetch.wait(k);
      direct = chunk && prefetch.direct(k);
      waited = true;
    }
    if (!chunk) {  // not read: read with the rest, which reports a real error properly
      rest.push_back(std::move(r));
      continue;
    }
    if (direct && r.direct_index != kNotDirect) {
      // Already in place, and checksummed by the helper as it read them: compared here, as
      // dataset pieces read in place are verified there.
      verify_checksum(reader, r, prefetch.direct_checksum(r.direct_index));
      last_stats.direct_bytes += r.bytes;
    } else {
      verify_and_consume(reader, r, chunk + (r.offset - prefetch.chunk_start(k)));
    }
    last_stats.prefetched_bytes += r.bytes;
  }
  // A later batch may still want the rest of the last chunk.
  if (waited && last_use) prefetch.release(k);
  if (waited && !last_use && k > 0) prefetch.release(k - 1);
  requests_ = std::move(rest);
}

void PackedReadBatch::run(ContainerReader& reader, int64_t staging_bytes,
                          PackedPrefetch* prefetch) {
  std::stable_sort(requests_.begin(), requests_.end(),
                   [](const Request& a, const Request& b) { return a.offset < b.offset; });
  last_stats = {};
  for (const Request& r : requests_) last_stats.bytes += r.bytes;
  if (prefetch) {
    // A later batch may still use the rest of it (pieces shared within a node are read after this
    // rank's own values; see node_share.hpp).
    if (!requests_.empty()) consume_prefetched(reader, *prefetch, false);
  } else if (std::unique_ptr<PackedPrefetch> taken = reader.take_prefetch()) {
    consume_prefetched(reader, *taken, true);
  }
  // Windows: runs of requests with small gaps, each read at once, kept well below the staging
  // bound: a small buffer is reused while still in cache, and the kernel's read-ahead keeps the
  // device busy between windows (announcing windows ahead with posix_fadvise was measured slower).
  const int64_t window_bytes = std::min(staging_bytes, kWindowBytes);
  struct Window {
    std::size_t first, last;  // requests [first, last)
    int64_t start, end;       // bytes of the packed dataset
  };
  std::vector<Window> windows;
  for (std::size_t i = 0; i < requests_.size();) {
    const int64_t start = requests_[i].offset;
    int64_t end = start + requests_[i].bytes;
    int64_t useful = requests_[i].bytes;
    std::size_t j = i + 1;
    while (j < requests_.size()) {
      const int64_t gap = requests_[j].offset - end;
      if (gap > kSmallGapBytes && (gap > kMaxGapBytes || gap > useful)) break;
      if (std::max(end, requests_[j].offset + requests_[j].bytes) - start > window_bytes) break;
      end = std::max(end, requests_[j].offset + requests_[j].bytes);
      useful += requests_[j].bytes;
      ++j;
    }
    windows.push_back({i, j, start, end});
    i = j;
  }
  // Two window buffers: one is verified and handed out on the helper thread while the next
  // window is read into the other.
  TransientBuffer buffers[2];
  OverlappedChecks checks;
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const Window& win = windows[w];
    const int64_t size = win.end - win.start;
    TransientBuffer& window = buffers[w % 2];
    if (static_cast<std::size_t>(size) > window.size())
      window = TransientBuffer(static_cast<std::size_t>(size));
    // The job that last used this buffer finished before the previous submit() returned.
    reader.read_packed(win.start, size, window.data());
    checks.submit(size, [this, &reader, win, data = window.data()] {
      for (std::size_t k = win.first; k < win.last; ++k)
        verify_and_consume(reader, requests_[k], data + (requests_[k].offset - win.start));
    });
  }
  checks.finish();
  requests_.clear();
}

namespace {

// A piece of a dataset tensor that this rank needs, and where its elements go.
struct Needed {
  const PieceRecord* piece;
  std::vector<PieceTarget> targets;
  bool direct;         // the piece lies inside one target box: read in place, no staging copy
  std::size_t source;  // index of its written box
  std::size_t home;    // for direct pieces, index of the target box
};

// Whether two boxes of the same rank share an element (intersect() without building the box).
bool touches(const Box& a, const Box& b) {
  if (a.rank() != b.rank()) return false;
  for (std::size_t d = 0; d < a.rank(); ++d)
    if (std::max(a.offset[d], b.offset[d]) >=
        std::min(a.offset[d] + a.count[d], b.offset[d] + b.count[d]))
      return false;
  return true;
}

// If `inner` (inside `outer`) is one contiguous run of `outer`'s row-major layout, the element
// offset where it starts; else -1. It is when, past its first axis of extent above one, it spans
// `outer` whole.
int64_t contiguous_offset(const Box& outer, const Box& inner) {
  const std::size_t rank = outer.rank();
  std::size_t d = 0;
  while (d < rank && inner.count[d] == 1) ++d;
  for (std::size_t e = d + 1; e < rank; ++e)
    if (inner.count[e] != outer.count[e]) return -1;
  int64_t offset = 0;
  for (std::size_t e = 0; e < rank; ++e)
    offset = offset * outer.count[e] + (inner.offset[e] - outer.offset[e]);
  return offset;
}

// The smallest box holding all of `pieces` (non-empty, same rank).
Box bounding_box(const std::vector<const Needed*>& pieces) {
  Box out = pieces.front()->piece->box;
  for (const Needed* n : pieces) {
    const Box& b = n->piece->box;
    for (std::size_t d = 0; d < out.rank(); ++d) {
      const int64_t end = std::max(out.offset[d] + out.count[d], b.offset[d] + b.count[d]);
      out.offset[d] = std::min(out.offset[d], b.offset[d]);
      out.count[d] = end - out.offset[d];
    }
  }
  return out;
}

// Verifies pieces read in place into one buffer, in parallel; throws naming the first bad one.
// Owns what it needs (the pieces live in the manifest): it may run after read_tensor returned.
struct InPlaceBlock {
  std::vector<const PieceRecord*> pieces;
  const std::byte* buffer;
  Box buffer_box;
};

void verify_in_place(const ContainerReader& reader, const TensorRecord& t,
                     const InPlaceBlock& block, int64_t esize) {
  const auto n = static_cast<int64_t>(block.pieces.size());
  // Hashes in parallel, then looks for the first bad piece in order: the error names the same
  // piece whatever the thread schedule, and no lock is taken inside the parallel loop.
  std::vector<uint64_t> found(block.pieces.size());
  int64_t bytes = 0;
  for (const PieceRecord* p : block.pieces) bytes += p->box.volume() * esize;
#pragma omp parallel for schedule(dynamic) if (n > 1 && bytes >= kParallelChecksumBytes)
  for (int64_t k = 0; k < n; ++k) {
    const auto i = static_cast<std::size_t>(k);
    found[i] = checksum_region(block.buffer, block.buffer_box, block.pieces[i]->box, esize);
  }
  for (std::size_t i = 0; i < found.size(); ++i)
    if (found[i] != block.pieces[i]->checksum)
      checksum_mismatch(reader, t.key, block.pieces[i]->box.to_string(), block.pieces[i]->checksum,
                        found[i]);
}

}  // namespace

int64_t read_tensor(ContainerReader& reader, const TensorRecord& t, const std::vector<Box>& boxes,
                    const std::vector<std::byte*>& buffers, PackedReadBatch& packed,
                    OverlappedChecks* overlapped,
                    const std::unordered_set<const PieceRecord*>* supplied) {
  OverlappedChecks local_checks;
  OverlappedChecks& checks = overlapped ? *overlapped : local_checks;
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  // Elements of each local box the pieces cover; on the stack for the usual one or two boxes
  // (this runs once per tensor of a restore).
  int64_t covered_inline[4] = {};
  std::vector<int64_t> covered_heap;
  if (boxes.size() > std::size(covered_inline)) covered_heap.assign(boxes.size(), 0);
  int64_t* covered = covered_heap.empty() ? covered_inline : covered_heap.data();
  std::vector<Needed> needed;
  int64_t read_bytes = 0;
  for (std::size_t w = 0; w < t.boxes.size(); ++w) {
    for (const PieceRecord& piece : t.boxes[w].pieces) {
      if (supplied && supplied->count(&piece)) {
        for (std::size_t i = 0; i < boxes.size(); ++i)
          if (auto overlap = intersect(boxes[i], piece.box)) covered[i] += overlap->volume();
        continue;
      }
      if (t.packed) {
        // The common case, a piece that is one contiguous run of a single local box, is queued
        // as a plain copy: no intersections built, no consumer.
        std::size_t home = boxes.size(), touched = 0;
        for (std::size_t i = 0; i < boxes.size(); ++i)
          if (touches(boxes[i], piece.box)) {
            ++touched;
            if (contains(boxes[i], piece.box)) home = i;
          }
        const int64_t start =
            touched == 1 && home < boxes.size() ? contiguous_offset(boxes[home], piece.box) : -1;
        if (start >= 0) {
          const int64_t volume = piece.box.volume();
          covered[home] += volume;
          read_bytes += volume * esize;
          packed.add_copy(piece.packed_offset, volume * esize, piece.checksum, &t.key, &piece.box,
                          buffers[home] + start * esize);
          continue;
        }
      }
      Needed need{&piece, {}, false, w, 0};
      for (std::size_t i = 0; i < boxes.size(); ++i) {
        if (auto overlap = intersect(boxes[i], piece.box)) {
          covered[i] += overlap->volume();
          if (need.targets.empty()) need.home = i;
          need.targets.push_back({buffers[i], boxes[i], *overlap});
        }
      }
      if (need.targets.empty()) continue;
      const int64_t piece_bytes = piece.box.volume() * esize;
      read_bytes += piece_bytes;
      if (t.packed) {
        packed.add(piece.packed_offset, piece_bytes, piece.checksum, &t.key, &piece.box, -1,
                   [targets = std::move(need.targets), piece_box = &piece.box,
                    esize](const std::byte* data) {
                     for (const PieceTarget& tg : targets)
                       copy_region(data, *piece_box, tg.buffer, tg.buffer_box, tg.overlap, esize);
                   });
        continue;
      }
      need.direct = need.targets.size() == 1 && need.targets.front().overlap == piece.box;
      needed.push_back(std::move(need));
    }
  }
  for (std::size_t i = 0; i < boxes.size(); ++i)
    if (covered[i] != boxes[i].volume())
      throw Error(ErrorCode::kCorrupt,
                  "the checkpoint holds " + std::to_string(covered[i]) + " of the " +
                      std::to_string(boxes[i].volume()) + " elements of box " +
                      boxes[i].to_string() + " (saved boxes overlap or leave a gap)",
                  {.rank = reader.rank(),
                   .checkpoint = reader.path(),
                   .key = t.key,
                   .box = boxes[i].to_string(),
                   .operation = "restore"});

  // Pieces that lie inside one of this rank's boxes are read in place, no staging copy: the run of
  // them that a saved box contributes to a local box is read at once when the pieces tile a box
  // (always, for block layouts), as one large read keeps more of the disk busy than many small
  // ones; then they are verified in parallel. Pieces that straddle this rank's boxes go through a
  // staging buffer.
  std::vector<std::byte> staging;
  for (std::size_t k = 0; k < needed.size();) {
    const Needed& need = needed[k];
    if (!need.direct) {
      checks.finish();  // pieces of different saved boxes may share a target: one writer at a time
      const Box& box = need.piece->box;
      staging.resize(static_cast<std::size_t>(box.volume() * esize));
      reader.read_region(t, box, staging.data(), box);
      const uint64_t found = checksum_bytes(staging.data(), staging.size());
      if (found != need.piece->checksum)
        checksum_mismatch(reader, t.key, box.to_string(), need.piece->checksum, found);
      for (const PieceTarget& tg : need.targets)
        copy_region(staging.data(), box, tg.buffer, tg.buffer_box, tg.overlap, esize);
      ++k;
      continue;
    }
    std::vector<const Needed*> run;
    for (; k < needed.size() && needed[k].direct && needed[k].source == need.source &&
           needed[k].home == need.home;
         ++k)
      run.push_back(&needed[k]);
    // A run is read in blocks of consecutive pieces, each verified while the next one is read.
    const PieceTarget& home = need.targets.front();
    for (std::size_t first = 0; first < run.size();) {
      std::vector<const Needed*> block;
      InPlaceBlock job{{}, home.buffer, home.buffer_box};
      int64_t block_volume = 0;
      for (; first < run.size() &&
             (block.empty() ||
              (block_volume + run[first]->piece->box.volume()) * esize <= kBlockBytes);
           ++first) {
        block.push_back(run[first]);
        job.pieces.push_back(run[first]->piece);
        block_volume += run[first]->piece->box.volume();
      }
      const Box whole = bounding_box(block);
      if (whole.volume() == block_volume) {
        reader.read_region(t, whole, home.buffer, home.buffer_box);
      } else {
        for (const Needed* n : block)
          reader.read_region(t, n->piece->box, home.buffer, home.buffer_box);
      }
      checks.submit(block_volume * esize, [&reader, &t, job = std::move(job), esize] {
        verify_in_place(reader, t, job, esize);
      });
    }
  }
  if (&checks == &local_checks) checks.finish();
  return read_bytes;
}

void collect_piece_needs(const TensorRecord& t, uint32_t tensor, const std::vector<Box>& boxes,
                         const std::vector<std::byte*>& buffers, std::vector<PieceNeed>& out) {
  // A writer's pieces of a tensor are in the same order in every rank's manifest: a 2.x record
  // adds them all at once, replicated pieces come from the table, a 1.x manifest is decoded whole.
  std::map<int, int64_t> next;  // per writer
  for (const WrittenBox& written : t.boxes)
    for (const PieceRecord& piece : written.pieces) {
      PieceNeed need{{tensor, written.rank, next[written.rank]++}, &t, &piece, {}};
      for (std::size_t i = 0; i < boxes.size(); ++i)
        if (touches(boxes[i], piece.box))
          need.targets.push_back({buffers[i], boxes[i], *intersect(boxes[i], piece.box)});
      if (!need.targets.empty()) out.push_back(std::move(need));
    }
}

void read_whole_pieces(ContainerReader& reader, const std::vector<const PieceNeed*>& pieces,
                       std::byte* out, int64_t staging_bytes, PackedPrefetch* prefetch) {
  PackedReadBatch packed;
  int64_t at = 0;
  for (const PieceNeed* need : pieces) {
    const TensorRecord& t = *need->tensor;
    const Box& box = need->piece->box;
    const int64_t bytes = box.volume() * static_cast<int64_t>(dtype_size(t.dtype));
    std::byte* slot = out + at;
    at += bytes;
    if (t.packed) {
      packed.add_copy(need->piece->packed_offset, bytes, need->piece->checksum, &t.key, &box, slot);
      continue;
    }
    reader.read_region(t, box, slot, box);
    const uint64_t found = checksum_bytes(slot, static_cast<std::size_t>(bytes));
    if (found != need->piece->checksum)
      checksum_mismatch(reader, t.key, box.to_string(), need->piece->checksum, found);
  }
  // Packed pieces reach their slots only once verified (windows are read into buffers of their
  // own).
  packed.run(reader, staging_bytes, prefetch);
}

void deliver_piece(const PieceNeed& need, const std::byte* data) {
  const int64_t esize = static_cast<int64_t>(dtype_size(need.tensor->dtype));
  for (const PieceTarget& tg : need.targets)
    copy_region(data, need.piece->box, tg.buffer, tg.buffer_box, tg.overlap, esize);
}

void read_state_blob(const StateRecord& state, const StateBlob& blob, std::string& out,
                     PackedReadBatch& packed) {
  out.clear();
  packed.add(blob.packed_offset, blob.bytes, blob.checksum, &state.key, nullptr, blob.rank,
             [&out, n = blob.bytes](const std::byte* data) {
               out.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
             });
}

}  // namespace cairn::detail
