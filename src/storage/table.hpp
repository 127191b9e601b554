// SPDX-License-Identifier: Apache-2.0
#pragma once
// Format 2.0's metadata: the header (small JSON), the global table rank 0 writes (binary) and the
// record each rank writes (binary, fixed-width, checksummed). One codec per structure; decoding
// validates everything docs/format.md requires and turns what a reader needs into the in-memory
// Manifest the restore and the tools work on. docs/format.md is normative.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"
#include "cairn/tensor/layout.hpp"
#include "storage/manifest.hpp"

namespace cairn {

/// `/cairn/manifest` in format 2.x: the global scalars. In 1.x the same dataset holds the whole
/// manifest; `format_major` tells which.
struct Header {
  int format_major = kFormatMajor;
  int format_minor = kFormatMinor;
  std::string library_version;
  int world_size = 1;
  int64_t save_counter = 0;
  int64_t created_unix = 0;
  int64_t packed_bytes = 0;
  int64_t piece_bytes = 1;
  int64_t pack_threshold_bytes = 0;
  /// Format 2.1: the file is one part of a checkpoint whose writers are spread over several files
  /// (node-local checkpoints, one file per node). Empty: the file holds every writer.
  std::vector<int> part_writers;  // ascending job ranks whose records and data this file holds
  int part_index = 0;
  int part_count = 1;
  /// Local. Whether this file holds writer `rank`'s record and data.
  bool holds_writer(int rank) const;
};

/// Local. Compact JSON, members in lexicographic order.
std::string encode_header(const Header& header);
/// Local. Reads `format` and `format_version` first: a newer major is kVersion, a 1.x manifest
/// returns a Header with only the version set (the caller decodes it as a 1.x manifest); a 2.x
/// header missing a member or with one out of range is kCorrupt.
Header decode_header(const std::string& json, const std::string& checkpoint);

enum class LayoutRule : uint8_t { kReplicated = 0, kBlock = 1, kGrid = 2, kExplicit = 3 };
enum class NodeValue : uint8_t { kNone = 0, kTensor = 1, kState = 2 };

struct TableNode {
  std::string kind;
  NodeValue value_kind = NodeValue::kNone;
  uint32_t value = 0;  // index into GlobalTable::tensors or ::states
};

struct TableEdge {
  uint32_t parent = 0;
  uint32_t child = 0;
  std::string name;  // as the user gave it, unescaped
};

struct TableSlot {
  uint32_t optimizer = 0;
  uint32_t variable = 0;
  uint32_t slot = 0;
  std::string name;
};

/// A box of an explicit layout and the rank that wrote it.
struct TableBox {
  uint32_t rank = 0;
  Box box;
};

struct TableTensor {
  uint32_t node = 0;
  DType dtype = DType::kF32;
  bool packed = false;
  LayoutRule layout = LayoutRule::kReplicated;
  Shape shape;
  std::vector<int64_t> params;  // block: {axis}; grid: the grid extents; else empty
  std::vector<TableBox> boxes;  // explicit layouts only, in order
};

/// A piece of a replicated tensor: its checksum is global (the `replicated` section).
struct TablePiece {
  uint32_t tensor = 0;
  uint32_t piece = 0;
  uint64_t checksum = 0;
  int64_t packed_offset = -1;
};

struct TableState {
  uint32_t node = 0;
  SavedScope scope = SavedScope::kPerRank;
};

struct TableBlob {
  uint32_t state = 0;
  uint32_t writer = 0;
  uint64_t checksum = 0;
  int64_t packed_offset = 0;
  int64_t bytes = 0;
};

struct GlobalTable {
  std::vector<TableNode> nodes;  // nodes[0] is the root
  std::vector<TableEdge> edges;  // grouped by increasing parent
  std::vector<TableSlot> slots;
  std::vector<TableTensor> tensors;
  std::vector<TablePiece> replicated;  // by tensor, then piece
  std::vector<TableState> states;
  std::vector<TableBlob> global_blobs;  // one per global state, in state order
};

/// Local. The binary table of docs/format.md (`/cairn/table`).
std::string encode_table(const GlobalTable& table);
/// Local. Decodes and validates a table against its header: kCorrupt naming the key (or node)
/// for anything docs/format.md's "Table consistency" rejects, kVersion for an unknown code in a
/// file of a newer minor version. `paths`, if given, receives every node's object path (the
/// decoder builds them to check the keys; manifest_from_table() can take them over).
GlobalTable decode_table(std::string_view bytes, const Header& header,
                         const std::string& checkpoint, std::vector<std::string>* paths = nullptr);

struct RecordPiece {
  uint32_t tensor = 0;
  uint32_t piece = 0;
  uint64_t checksum = 0;
  int64_t packed_offset = -1;
};

struct RecordBlob {
  uint32_t state = 0;
  uint64_t checksum = 0;
  int64_t packed_offset = 0;
  int64_t bytes = 0;
};

/// Sizes of a 2.0 record's header and entries (docs/format.md); a save sizes its records with them
/// before the checksums are known.
inline constexpr int64_t kRecordHeaderBytes = 40;
inline constexpr int64_t kRecordPieceBytes = 24;
inline constexpr int64_t kRecordBlobBytes = 32;

/// What one rank wrote: its pieces of block, grid and explicit tensors and its per-rank state.
struct RankRecord {
  int rank = 0;
  std::vector<RecordPiece> pieces;  // by tensor, then piece
  std::vector<RecordBlob> blobs;    // one per per-rank state, in state order
};

/// Local. The binary record of docs/format.md (header with the body's checksum, then entries).
std::string encode_record(const RankRecord& record);
/// Local. Decodes rank `rank`'s record and checks it against the table: kCorrupt naming the
/// checkpoint and the rank (and the key, for a wrong entry) for anything docs/format.md rejects.
RankRecord decode_record(std::string_view bytes, int rank, const GlobalTable& table,
                         const Header& header, const std::string& checkpoint);

/// Local. The Layout a table tensor's rule describes, for a job of `world_size` ranks.
Layout table_layout(const TableTensor& t, int world_size);
/// Local. The non-empty boxes writer `writer` wrote of `t`, in order (none for replicated).
std::vector<Box> writer_boxes(const TableTensor& t, int writer, int world_size);
/// Local. The pieces a box of `t` is cut into: split_box() for dataset storage, the box for packed.
std::vector<Box> box_pieces(const TableTensor& t, const Box& box, int64_t piece_bytes);
/// Local. The writers of block, grid and explicit tensor `t` with a box that intersects `region`,
/// in increasing order, without reading anything (computed from the rule).
std::vector<int> writers_intersecting(const TableTensor& t, const Box& region, int world_size);
/// Local. Appends writers_intersecting() to `out` without building a list, skipping a writer
/// equal to the last one in `out` (callers that gather many tensors' writers sort and dedupe).
void append_writers_intersecting(const TableTensor& t, const Box& region, int world_size,
                                 std::vector<int>& out);

/// Local. A format version as the header and error messages write it: "<major>.<minor>".
std::string format_version_text(int major, int minor);

/// Local. A manifest holding only the header's scalars (no nodes, tensors or states): what the
/// tools show of a 2.x file whose table nothing vouches for.
Manifest manifest_from_header(const Header& header);
/// Local. The in-memory manifest of a 2.x file before any record is added: every node with its
/// path and children, every tensor with its key, dataset path, layout description and (replicated
/// tensors only) its boxes, every state with (global states only) its blob. `paths`: the nodes'
/// paths as decode_table() gave them, or empty to compute them here.
Manifest manifest_from_table(const Header& header, const GlobalTable& table,
                             std::vector<std::string> paths = {});
/// Local. Adds what `record` holds to `manifest` (built by manifest_from_table from the same
/// table): the writer's boxes of block, grid and explicit tensors with their pieces, and its
/// per-rank blobs.
void add_record(Manifest& manifest, const GlobalTable& table, const Header& header,
                const RankRecord& record);

}  // namespace cairn
