#include "storage/tensor_read.hpp"

#include <algorithm>
#include <cstring>

#include "storage/checksum.hpp"

namespace cairn::detail {
namespace {

// Gaps up to this size between packed requests are read through rather than split into two reads.
constexpr int64_t kMaxGapBytes = int64_t{1} << 20;

[[noreturn]] void checksum_mismatch(const ContainerReader& reader, const std::string& key,
                                    const std::string& piece, uint64_t expected, uint64_t found) {
  throw Error(ErrorCode::kCorrupt,
              "checksum mismatch in piece " + piece + ": expected " + checksum_to_hex(expected) +
                  ", found " + checksum_to_hex(found) + " (the data on disk is damaged)",
              {.rank = reader.rank(), .checkpoint = reader.path(), .key = key, .box = piece,
               .operation = "verify"});
}

}  // namespace

void PackedReadBatch::add(int64_t offset, int64_t bytes, uint64_t checksum, std::string key,
                          std::string piece, Consumer consume) {
  requests_.push_back({offset, bytes, checksum, std::move(key), std::move(piece), std::move(consume)});
}

void PackedReadBatch::run(ContainerReader& reader, int64_t staging_bytes) {
  std::stable_sort(requests_.begin(), requests_.end(),
                   [](const Request& a, const Request& b) { return a.offset < b.offset; });
  std::vector<std::byte> window;
  std::size_t i = 0;
  while (i < requests_.size()) {
    const int64_t start = requests_[i].offset;
    int64_t end = start + requests_[i].bytes;
    std::size_t j = i + 1;
    while (j < requests_.size() && requests_[j].offset <= end + kMaxGapBytes &&
           std::max(end, requests_[j].offset + requests_[j].bytes) - start <= staging_bytes) {
      end = std::max(end, requests_[j].offset + requests_[j].bytes);
      ++j;
    }
    window.resize(static_cast<std::size_t>(end - start));
    reader.read_packed(start, end - start, window.data());
    for (std::size_t k = i; k < j; ++k) {
      Request& r = requests_[k];
      const std::byte* data = window.data() + (r.offset - start);
      const uint64_t found = checksum_bytes(data, static_cast<std::size_t>(r.bytes));
      if (found != r.checksum) checksum_mismatch(reader, r.key, r.piece, r.checksum, found);
      r.consume(data);
    }
    i = j;
  }
  requests_.clear();
}

void read_tensor(ContainerReader& reader, const TensorRecord& t, const std::vector<Box>& boxes,
                 const std::vector<std::byte*>& buffers, PackedReadBatch& packed) {
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  std::vector<int64_t> covered(boxes.size(), 0);
  std::vector<std::byte> staging;
  for (const WrittenBox& wb : t.boxes) {
    if (!t.packed) {
      // Fast path: the saved box lies inside one of ours; read it in place and verify its pieces.
      auto home = std::find_if(boxes.begin(), boxes.end(),
                               [&](const Box& b) { return !wb.box.empty() && contains(b, wb.box); });
      if (home != boxes.end()) {
        const auto i = static_cast<std::size_t>(home - boxes.begin());
        reader.read_region(t, wb.box, buffers[i], *home);
        const auto n = static_cast<int64_t>(wb.pieces.size());
        std::string bad;
        uint64_t bad_expected = 0, bad_found = 0;
#pragma omp parallel for schedule(dynamic)
        for (int64_t p = 0; p < n; ++p) {
          const PieceRecord& piece = wb.pieces[static_cast<std::size_t>(p)];
          const uint64_t found = checksum_region(buffers[i], *home, piece.box, esize);
          if (found != piece.checksum) {
#pragma omp critical
            if (bad.empty()) {
              bad = piece.box.to_string();
              bad_expected = piece.checksum;
              bad_found = found;
            }
          }
        }
        if (!bad.empty()) checksum_mismatch(reader, t.key, bad, bad_expected, bad_found);
        covered[i] += wb.box.volume();
        for (std::size_t o = 0; o < boxes.size(); ++o) {
          if (o == i) continue;
          if (auto overlap = intersect(boxes[o], wb.box)) {
            copy_region(buffers[i], *home, buffers[o], boxes[o], *overlap, esize);
            covered[o] += overlap->volume();
          }
        }
        continue;
      }
    }
    for (const PieceRecord& piece : wb.pieces) {
      struct Target {
        std::byte* buffer;
        Box buffer_box;
        Box overlap;
      };
      std::vector<Target> targets;
      for (std::size_t i = 0; i < boxes.size(); ++i) {
        if (auto overlap = intersect(boxes[i], piece.box)) {
          covered[i] += overlap->volume();
          targets.push_back({buffers[i], boxes[i], *overlap});
        }
      }
      if (targets.empty()) continue;
      const int64_t piece_bytes = piece.box.volume() * esize;
      if (t.packed) {
        packed.add(piece.packed_offset, piece_bytes, piece.checksum, t.key, piece.box.to_string(),
                   [targets, piece_box = piece.box, esize](const std::byte* data) {
                     for (const Target& tg : targets)
                       copy_region(data, piece_box, tg.buffer, tg.buffer_box, tg.overlap, esize);
                   });
        continue;
      }
      staging.resize(static_cast<std::size_t>(piece_bytes));
      reader.read_region(t, piece.box, staging.data(), piece.box);
      const uint64_t found = checksum_bytes(staging.data(), staging.size());
      if (found != piece.checksum)
        checksum_mismatch(reader, t.key, piece.box.to_string(), piece.checksum, found);
      for (const Target& tg : targets)
        copy_region(staging.data(), piece.box, tg.buffer, tg.buffer_box, tg.overlap, esize);
    }
  }
  for (std::size_t i = 0; i < boxes.size(); ++i)
    if (covered[i] != boxes[i].volume())
      throw Error(ErrorCode::kCorrupt,
                  "the checkpoint holds " + std::to_string(covered[i]) + " of the " +
                      std::to_string(boxes[i].volume()) + " elements of box " +
                      boxes[i].to_string() + " (saved boxes overlap or leave a gap)",
                  {.rank = reader.rank(), .checkpoint = reader.path(), .key = t.key,
                   .box = boxes[i].to_string(), .operation = "restore"});
}

void read_state_blob(const StateRecord& state, const StateBlob& blob, std::string& out,
                     PackedReadBatch& packed) {
  out.clear();
  packed.add(blob.packed_offset, blob.bytes, blob.checksum, state.key,
             "rank " + std::to_string(blob.rank) + " value",
             [&out, n = blob.bytes](const std::byte* data) {
               out.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
             });
}

}  // namespace cairn::detail
