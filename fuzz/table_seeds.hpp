// SPDX-License-Identifier: Apache-2.0
#pragma once
// Seeds of fuzz_table: small format 2.0 headers, tables and records built with the codec, framed
// as fuzz_table reads them (see fuzz_table.cpp). make_seeds writes them to fuzz/corpus/fuzz_table.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/table.hpp"

namespace cairn::fuzz {

/// rank byte, u32 header length, u32 table length (little-endian), header, table, record.
inline std::string frame_table_input(int rank, const std::string& header, const std::string& table,
                                     const std::string& record) {
  std::string out(1, static_cast<char>(rank));
  for (uint32_t n : {static_cast<uint32_t>(header.size()), static_cast<uint32_t>(table.size())})
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  return out + header + table + record;
}

// Fills the replicated pieces, the global blobs and rank `rank`'s record the way a writer would.
inline std::string framed(Header h, GlobalTable g, int rank) {
  int64_t packed = 0;
  uint64_t sum = 0x9e3779b97f4a7c15ull;
  auto offset = [&](const TableTensor& t, const Box& piece) {
    if (!t.packed) return int64_t{-1};
    const int64_t at = packed;
    packed += piece.volume() * static_cast<int64_t>(dtype_size(t.dtype));
    return at;
  };
  for (uint32_t i = 0; i < g.tensors.size(); ++i) {
    const TableTensor& t = g.tensors[i];
    if (t.layout != LayoutRule::kReplicated) continue;
    const std::vector<Box> pieces = box_pieces(t, Box::whole(t.shape), h.piece_bytes);
    for (uint32_t p = 0; p < pieces.size(); ++p)
      g.replicated.push_back({i, p, sum += 7, offset(t, pieces[p])});
  }
  for (uint32_t s = 0; s < g.states.size(); ++s)
    if (g.states[s].scope == SavedScope::kGlobal) {
      g.global_blobs.push_back({s, s % static_cast<uint32_t>(h.world_size), sum += 7, packed, 3});
      packed += 3;
    }
  RankRecord r;
  r.rank = rank;
  for (uint32_t i = 0; i < g.tensors.size(); ++i) {
    const TableTensor& t = g.tensors[i];
    if (t.layout == LayoutRule::kReplicated) continue;
    uint32_t n = 0;
    for (const Box& box : writer_boxes(t, rank, h.world_size))
      for (const Box& piece : box_pieces(t, box, h.piece_bytes))
        r.pieces.push_back({i, n++, sum += 7, offset(t, piece)});
  }
  for (uint32_t s = 0; s < g.states.size(); ++s)
    if (g.states[s].scope == SavedScope::kPerRank) {
      r.blobs.push_back({s, sum += 7, packed, 4});
      packed += 4;
    }
  h.packed_bytes = packed + 64;
  return frame_table_input(rank, encode_header(h), encode_table(g), encode_record(r));
}

inline TableTensor seed_tensor(uint32_t node, DType dtype, bool packed, LayoutRule layout,
                               Shape shape, std::vector<int64_t> params = {},
                               std::vector<TableBox> boxes = {}) {
  TableTensor t;
  t.node = node;
  t.dtype = dtype;
  t.packed = packed;
  t.layout = layout;
  t.shape = std::move(shape);
  t.params = std::move(params);
  t.boxes = std::move(boxes);
  return t;
}

/// (file name, framed input) of every seed.
inline std::vector<std::pair<std::string, std::string>> table_seeds() {
  using L = LayoutRule;
  std::vector<std::pair<std::string, std::string>> out;
  {  // One rank: a block dataset tensor in several pieces, a packed scalar, per-rank state.
    Header h;
    h.library_version = "0.2.0";
    h.piece_bytes = 16;
    GlobalTable g;
    g.nodes = {{"root"},
               {"variable", NodeValue::kTensor, 0},
               {"variable", NodeValue::kTensor, 1},
               {"state", NodeValue::kState, 0}};
    g.edges = {{0, 1, "w"}, {0, 2, "step"}, {0, 3, "rng"}};
    g.tensors = {seed_tensor(1, DType::kF32, false, L::kBlock, {6, 3}, {0}),
                 seed_tensor(2, DType::kI64, true, L::kReplicated, {})};
    g.states = {{3, SavedScope::kPerRank}};
    out.emplace_back("np1-block.bin", framed(h, g, 0));
  }
  {  // Three ranks: every layout, a shared node, a cycle, slots, global state.
    Header h;
    h.library_version = "0.2.0";
    h.world_size = 3;
    h.piece_bytes = 8;
    GlobalTable g;
    g.nodes = {{"root"},
               {"node"},
               {"optimizer"},
               {"variable", NodeValue::kTensor, 0},
               {"variable", NodeValue::kTensor, 1},
               {"variable", NodeValue::kTensor, 2},
               {"variable", NodeValue::kTensor, 3},
               {"state", NodeValue::kState, 0},
               {"state", NodeValue::kState, 1},
               {"variable", NodeValue::kTensor, 4}};
    g.edges = {{0, 1, "model"}, {0, 2, "opt"},   {0, 7, "st"}, {0, 8, "gs"}, {0, 1, "alias"},
               {1, 0, "back"},  {1, 3, "a.b/c"}, {1, 4, "g"},  {1, 5, "e"},  {1, 6, "r"}};
    g.slots = {{2, 3, 9, "m"}};
    g.tensors = {seed_tensor(3, DType::kF16, false, L::kBlock, {7, 2}, {0}),
                 seed_tensor(4, DType::kF64, false, L::kGrid, {2, 2}, {1, 3}),
                 seed_tensor(5, DType::kI8, true, L::kExplicit, {4}, {},
                             {{0, Box{{0}, {1}}}, {2, Box{{1}, {1}}}, {0, Box{{2}, {2}}}}),
                 seed_tensor(6, DType::kBF16, false, L::kReplicated, {5}),
                 seed_tensor(9, DType::kBool, true, L::kBlock, {2}, {0})};
    g.states = {{7, SavedScope::kPerRank}, {8, SavedScope::kGlobal}};
    for (int rank = 0; rank < 3; ++rank)
      out.emplace_back("np3-rank" + std::to_string(rank) + ".bin", framed(h, g, rank));
  }
  {  // A 1.x header: the table codec is not for it.
    out.emplace_back(
        "format1.bin",
        frame_table_input(0, R"({"format":"cairn-checkpoint","format_version":"1.1"})", "", ""));
  }
  return out;
}

}  // namespace cairn::fuzz
