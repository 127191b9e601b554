// SPDX-License-Identifier: Apache-2.0
#pragma once
// The in-memory manifest of a checkpoint: plain structs the restore and the tools work on. A
// format 2.x file is decoded into it from its header, table and records (storage/table.hpp); a 1.x
// file from its JSON manifest (the 1.x codec below). docs/format.md is normative.
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"

namespace cairn {

/// The format this cairn writes for a whole checkpoint.
inline constexpr int kFormatMajor = 2;
inline constexpr int kFormatMinor = 0;
/// The minor version of a part file (one node's part of a node-local checkpoint, see
/// docs/format.md), and the newest 2.x minor this cairn reads.
inline constexpr int kPartFormatMinor = 1;
inline constexpr int kNewestFormatMinor = 1;
/// The newest 1.x format this cairn reads.
inline constexpr int kLegacyMajor = 1;
inline constexpr int kLegacyMinor = 1;

/// A checksummed, contiguous-in-file piece of a written box.
struct PieceRecord {
  Box box;
  uint64_t checksum = 0;
  int64_t packed_offset = -1;  // byte offset in the packed dataset; -1 for dataset tensors
};

/// A box of a tensor as one rank wrote it.
struct WrittenBox {
  int rank = 0;
  Box box;
  std::vector<PieceRecord> pieces;
};

struct TensorRecord {
  std::string key;
  DType dtype = DType::kF32;
  Shape shape;
  std::string layout;   // Layout::describe() at save, for people
  bool packed = false;  // in the packed byte dataset rather than a dataset of its own
  std::string dataset;  // HDF5 path of its dataset when not packed
  std::vector<WrittenBox> boxes;
};

struct StateBlob {
  int rank = 0;  // the rank whose value this is (the writer, for global state)
  int64_t packed_offset = 0;
  int64_t bytes = 0;
  uint64_t checksum = 0;
};

/// Whose value a saved state is: each rank's own, or one for the whole job (the manifest's
/// "scope": "per_rank" or "global").
enum class SavedScope { kPerRank, kGlobal };

struct StateRecord {
  std::string key;
  SavedScope scope = SavedScope::kPerRank;
  std::vector<StateBlob> blobs;
};

struct SlotRecord {
  int64_t variable = -1;
  std::string name;
  int64_t slot = -1;
};

struct NodeRecord {
  std::string kind;  // "root", "node", "variable", "state", "optimizer"
  std::string path;  // first BFS path, for messages
  std::vector<std::pair<std::string, int64_t>> children;
  std::vector<SlotRecord> slots;  // on optimizer nodes
  std::string value_key;          // tensor or state key for leaves, else empty
};

struct Manifest {
  int format_major = kFormatMajor;
  int format_minor = kFormatMinor;
  std::string library_version;
  int world_size = 1;
  int64_t save_counter = 0;
  int64_t created_unix = 0;
  int64_t packed_bytes = 0;
  std::vector<NodeRecord> nodes;  // nodes[0] is the root
  std::vector<TensorRecord> tensors;
  std::vector<StateRecord> states;
};

/// Local. A 1.x manifest's JSON text (compact, members in lexicographic order). cairn no longer
/// writes 1.x files: tests and fuzzers use it to make them.
std::string encode_manifest(const Manifest& manifest);
/// Local. Parses and validates a 1.x manifest: a newer major format is ErrorCode::kVersion,
/// anything malformed or inconsistent (unknown dtype, absurd shape, box outside its tensor,
/// overlapping pieces, packed range past the end, dangling node index) is ErrorCode::kCorrupt
/// naming the key.
Manifest decode_manifest(const std::string& json, const std::string& checkpoint);

/// The commit mark written into the file after all data is durable.
struct CommitMark {
  uint64_t manifest_checksum = 0;
  int64_t manifest_bytes = 0;
  int64_t committed_unix = 0;
  /// Format 2.x: the table's size and checksum. A 1.x mark has none (table_bytes -1).
  int64_t table_bytes = -1;
  uint64_t table_checksum = 0;
};
std::string encode_commit_mark(const CommitMark& mark);
CommitMark decode_commit_mark(const std::string& json, const std::string& checkpoint);

/// TensorFlow's escaping of a dependency name inside an object path: "." -> "..", "/" -> ".S".
std::string escape_name(const std::string& name);

}  // namespace cairn
