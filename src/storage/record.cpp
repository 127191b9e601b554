// SPDX-License-Identifier: Apache-2.0
// A rank's record in format 2.x (docs/format.md, "the ranks' records"): a fixed 40-byte header with
// the body's checksum, then fixed-width piece and blob entries, checked against the table.
#include <limits>

#include "cairn/core/error.hpp"
#include "storage/byte_io.hpp"
#include "storage/checksum.hpp"
#include "storage/table.hpp"
#include "storage/table_internal.hpp"

namespace cairn {
namespace {

constexpr char kRecordMagic[] = "CAIRNREC";
// The sizes table.hpp gives (a save sizes its record with them), unsigned for the byte arithmetic.
constexpr auto kHeaderBytes = static_cast<uint64_t>(kRecordHeaderBytes);
constexpr auto kPieceEntryBytes = static_cast<uint64_t>(kRecordPieceBytes);
constexpr auto kBlobEntryBytes = static_cast<uint64_t>(kRecordBlobBytes);

}  // namespace

namespace detail {

void record_corrupt(const std::string& ckpt, int rank, const std::string& key,
                    const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "record of rank " + std::to_string(rank) + ": " + what,
              {.checkpoint = ckpt, .key = key, .operation = "decode record"});
}

}  // namespace detail

std::string encode_record(const RankRecord& record) {
  detail::ByteWriter out;
  out.bytes(std::string_view(kRecordMagic, 8));
  out.u32(static_cast<uint32_t>(record.rank));
  out.u16(static_cast<uint16_t>(kPieceEntryBytes));
  out.u16(static_cast<uint16_t>(kBlobEntryBytes));
  out.u64(record.pieces.size());
  out.u64(record.blobs.size());
  out.u64(0);  // body_xxh3, filled in below
  for (const RecordPiece& p : record.pieces) {
    out.u32(p.tensor);
    out.u32(p.piece);
    out.u64(p.checksum);
    out.i64(p.packed_offset);
  }
  for (const RecordBlob& b : record.blobs) {
    out.u32(b.state);
    out.zeros(4);
    out.u64(b.checksum);
    out.i64(b.packed_offset);
    out.i64(b.bytes);
  }
  const std::string& s = out.str();
  out.put_u64(32, checksum_bytes(s.data() + kHeaderBytes, s.size() - kHeaderBytes));
  return std::move(out.str());
}

RankRecord decode_record(std::string_view bytes, int rank, const GlobalTable& table,
                         const Header& header, const std::string& ckpt) {
  auto corrupt = [&](const std::string& key, const std::string& what) {
    detail::record_corrupt(ckpt, rank, key, what);
  };
  const detail::ByteReader r(bytes, [&](const std::string& what) { corrupt("", what); });
  if (r.size() < kHeaderBytes)
    corrupt("", "the record has " + std::to_string(r.size()) + " bytes, fewer than its " +
                    std::to_string(kHeaderBytes) + "-byte header");
  if (r.view(0, 8) != std::string_view(kRecordMagic, 8)) corrupt("", "bad magic (not CAIRNREC)");
  const uint32_t writer = r.u32(8);
  if (static_cast<int64_t>(writer) != rank)
    corrupt("", "the record says it is rank " + std::to_string(writer) + "'s");
  const uint64_t piece_bytes = r.u16(12), blob_bytes = r.u16(14);
  const uint64_t piece_count = r.u64(16), blob_count = r.u64(24);
  if (piece_bytes < kPieceEntryBytes || blob_bytes < kBlobEntryBytes)
    corrupt("", "entries of " + std::to_string(piece_bytes) + " and " + std::to_string(blob_bytes) +
                    " bytes, expected at least " + std::to_string(kPieceEntryBytes) + " and " +
                    std::to_string(kBlobEntryBytes));
  // Every product is checked against the body before it is formed: counts may be 2^60.
  const uint64_t body = r.size() - kHeaderBytes;
  if (piece_count > body / piece_bytes ||
      blob_count > (body - piece_count * piece_bytes) / blob_bytes ||
      piece_count * piece_bytes + blob_count * blob_bytes != body)
    corrupt("", "the record has " + std::to_string(r.size()) + " bytes, but its header describes " +
                    std::to_string(piece_count) + " pieces of " + std::to_string(piece_bytes) +
                    " bytes and " + std::to_string(blob_count) + " blobs of " +
                    std::to_string(blob_bytes) + " bytes");
  const uint64_t sum = checksum_bytes(bytes.data() + kHeaderBytes, body);
  if (sum != r.u64(32))
    corrupt("", "the body's checksum is " + checksum_to_hex(sum) + ", the header says " +
                    checksum_to_hex(r.u64(32)));

  RankRecord out;
  out.rank = rank;
  out.pieces.reserve(piece_count);
  out.blobs.reserve(blob_count);
  // The keys, only for messages: the paths cost a pass over the graph.
  auto key_of_tensor = [&](uint64_t t) -> std::string {
    if (t >= table.tensors.size()) return "";
    return detail::tensor_key(table, detail::table_paths(table, ckpt), t);
  };
  auto piece_at = [&](uint64_t i) {
    const uint64_t at = kHeaderBytes + i * piece_bytes;
    return RecordPiece{r.u32(at), r.u32(at + 4), r.u64(at + 8), r.i64(at + 16)};
  };
  uint64_t next = 0;
  for (std::size_t t = 0; t < table.tensors.size(); ++t) {
    const TableTensor& tensor = table.tensors[t];
    if (tensor.layout == LayoutRule::kReplicated) continue;
    const int64_t esize = static_cast<int64_t>(dtype_size(tensor.dtype));
    int64_t number = 0;
    detail::for_each_writer_box(tensor, rank, header.world_size, [&](const Box& box) {
      const int64_t pieces = detail::box_piece_count(tensor, box, header.piece_bytes);
      for (int64_t p = 0; p < pieces; ++p, ++number) {
        if (next >= piece_count)
          corrupt(key_of_tensor(t), "the record ends before piece " + std::to_string(number) +
                                        " of tensor " + std::to_string(t));
        const RecordPiece e = piece_at(next);
        if (e.tensor != t || e.piece != static_cast<uint64_t>(number))
          corrupt(key_of_tensor(t), "entry " + std::to_string(next) + " is piece " +
                                        std::to_string(e.piece) + " of tensor " +
                                        std::to_string(e.tensor) + ", expected piece " +
                                        std::to_string(number) + " of tensor " + std::to_string(t));
        if (tensor.packed) {
          const int64_t volume = box.volume();  // a packed box is one piece
          const std::string problem =
              detail::packed_range_problem(e.packed_offset, volume * esize, header.packed_bytes);
          if (!problem.empty()) corrupt(key_of_tensor(t), problem);
        } else if (e.packed_offset != -1) {
          corrupt(key_of_tensor(t), "dataset piece " + std::to_string(number) +
                                        " has packed offset " + std::to_string(e.packed_offset) +
                                        ", expected -1");
        }
        out.pieces.push_back(e);
        ++next;
      }
    });
  }
  if (next < piece_count) {
    const RecordPiece e = piece_at(next);
    const bool replicated = e.tensor < table.tensors.size() &&
                            table.tensors[e.tensor].layout == LayoutRule::kReplicated;
    corrupt(key_of_tensor(e.tensor),
            "entry " + std::to_string(next) + " (piece " + std::to_string(e.piece) + " of tensor " +
                std::to_string(e.tensor) + ") is " +
                (replicated ? "of a replicated tensor, whose pieces are in the table"
                            : "not a piece this rank wrote, or one too many"));
  }
  const uint64_t blobs_at = kHeaderBytes + piece_count * piece_bytes;
  uint64_t blob = 0;
  for (std::size_t s = 0; s < table.states.size(); ++s) {
    if (table.states[s].scope != SavedScope::kPerRank) continue;
    const std::string key =
        blob < blob_count ? "" : detail::state_key_of(table, detail::table_paths(table, ckpt), s);
    if (blob >= blob_count) corrupt(key, "no blob for per-rank state " + std::to_string(s));
    const uint64_t at = blobs_at + blob * blob_bytes;
    const RecordBlob b{r.u32(at), r.u64(at + 8), r.i64(at + 16), r.i64(at + 24)};
    if (b.state != s)
      corrupt(detail::state_key_of(table, detail::table_paths(table, ckpt), s),
              "blob " + std::to_string(blob) + " is of state " + std::to_string(b.state) +
                  ", expected per-rank state " + std::to_string(s));
    const std::string problem =
        detail::packed_range_problem(b.packed_offset, b.bytes, header.packed_bytes);
    if (!problem.empty())
      corrupt(detail::state_key_of(table, detail::table_paths(table, ckpt), s), problem);
    out.blobs.push_back(b);
    ++blob;
  }
  if (blob < blob_count)
    corrupt("", "the record holds " + std::to_string(blob_count) + " blobs for " +
                    std::to_string(blob) + " per-rank states");
  return out;
}

}  // namespace cairn
