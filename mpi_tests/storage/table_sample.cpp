// SPDX-License-Identifier: Apache-2.0
#include "table_sample.hpp"

#include <gtest/gtest.h>

namespace cairn::table_testing {

namespace {

// One box a rank wrote, with its pieces, for the sample's hand-written expectation.
struct HandBox {
  uint32_t tensor;
  int rank;
  Box box;
  std::vector<Box> pieces;
};

}  // namespace

Box B(Shape offset, Shape count) {
  return Box{std::move(offset), std::move(count)};
}

TableTensor tensor(uint32_t node, DType dtype, bool packed, LayoutRule layout, Shape shape,
                   std::vector<int64_t> params, std::vector<TableBox> boxes) {
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

// World size 3, piece_bytes 8: all 13 dtypes, packed and dataset, the four layouts (a block over
// more ranks than the extent, a grid with an empty cell, explicit with a rank owning nothing and
// one owning two boxes), scalars, empty tensors, a shared node, a cycle, slots (two slot-only
// nodes and one reachable by an edge), per-rank and global state.
Sample sample() {
  Sample s;
  s.header.library_version = "0.2.0";
  s.header.world_size = kWorld;
  s.header.save_counter = 4;
  s.header.created_unix = 1795628571;
  s.header.packed_bytes = kPackedBytes;
  s.header.piece_bytes = kPieceBytes;
  s.header.pack_threshold_bytes = 16;
  GlobalTable& g = s.table;
  // Nodes: 0 root, 1 model, 2 opt, 3 st, 4 gs, 5..17 v0..v12, 18 gs2, 19 model/a.b/c,
  // 20 model/grid, 21 slot m of v0, 22 slot v of model/a.b/c.
  g.nodes = {{"root"},
             {"node"},
             {"optimizer"},
             {"state", NodeValue::kState, 0},
             {"state", NodeValue::kState, 1}};
  for (uint32_t i = 0; i < 13; ++i) g.nodes.push_back({"variable", NodeValue::kTensor, i});
  g.nodes.push_back({"state", NodeValue::kState, 2});
  g.nodes.push_back({"variable", NodeValue::kTensor, 13});
  g.nodes.push_back({"node"});
  g.nodes.push_back({"variable", NodeValue::kTensor, 14});
  g.nodes.push_back({"variable", NodeValue::kTensor, 15});
  g.edges = {{0, 1, "model"}, {0, 2, "opt"}, {0, 3, "st"}, {0, 4, "gs"}};
  for (uint32_t i = 0; i < 13; ++i) g.edges.push_back({0, 5 + i, "v" + std::to_string(i)});
  g.edges.push_back({0, 18, "gs2"});
  g.edges.push_back({0, 1, "alias"});  // shared: a second edge to node 1
  g.edges.push_back({1, 0, "back"});   // a cycle back to the root
  g.edges.push_back({1, 19, "a.b/c"});
  g.edges.push_back({1, 20, "grid"});
  g.slots = {{2, 5, 21, "m"}, {2, 19, 22, "v"}, {2, 6, 20, "x"}};
  using L = LayoutRule;
  g.tensors = {
      tensor(5, DType::kF16, false, L::kBlock, {7, 2}, {0}),
      tensor(6, DType::kBF16, false, L::kReplicated, {5}),
      tensor(7, DType::kF32, true, L::kGrid, {2, 3}, {3}),
      tensor(8, DType::kF64, false, L::kGrid, {2, 2}, {1, 3}),
      tensor(9, DType::kI8, true, L::kExplicit, {4}, {},
             {{0, B({0}, {1})}, {2, B({1}, {1})}, {0, B({2}, {2})}}),
      tensor(10, DType::kI16, true, L::kReplicated, {}),
      tensor(11, DType::kI32, false, L::kBlock, {0, 3}, {0}),
      tensor(12, DType::kI64, true, L::kReplicated, {2}),
      tensor(13, DType::kU8, true, L::kBlock, {5}, {0}),
      tensor(14, DType::kU16, false, L::kBlock, {}, {0}),
      tensor(15, DType::kU32, false, L::kExplicit, {1, 2}, {}, {{2, B({0, 0}, {1, 2})}}),
      tensor(16, DType::kU64, false, L::kReplicated, {0}),
      tensor(17, DType::kBool, true, L::kBlock, {2}, {0}),  // 3 ranks, 2 rows
      tensor(19, DType::kF32, true, L::kReplicated, {2}),
      tensor(21, DType::kF32, true, L::kBlock, {3}, {0}),
      tensor(22, DType::kF32, true, L::kReplicated, {}),
  };
  g.states = {{3, SavedScope::kPerRank}, {4, SavedScope::kGlobal}, {18, SavedScope::kGlobal}};

  int64_t packed = 0;
  uint64_t sum = 0x1000;
  auto next_offset = [&](const TableTensor& t, const Box& piece) {
    if (!t.packed) return int64_t{-1};
    const int64_t at = packed;
    packed += piece.volume() * static_cast<int64_t>(dtype_size(t.dtype));
    return at;
  };
  // Replicated: piece p of tensor t written by rank (p + t) mod 3.
  struct HandPiece {
    uint32_t tensor;
    int writer;
    Box piece;
  };
  const std::vector<HandPiece> replicated = {{1, 1, B({0}, {4})},  {1, 2, B({4}, {1})},
                                             {5, 2, B({}, {})},    {7, 1, B({0}, {2})},
                                             {13, 1, B({0}, {2})}, {15, 0, B({}, {})}};
  const std::vector<HandBox> boxes = {
      {0, 0, B({0, 0}, {3, 2}), {B({0, 0}, {2, 2}), B({2, 0}, {1, 2})}},
      {2, 0, B({0, 0}, {1, 3}), {B({0, 0}, {1, 3})}},
      {3, 0, B({0, 0}, {2, 1}), {B({0, 0}, {1, 1}), B({1, 0}, {1, 1})}},
      {4, 0, B({0}, {1}), {B({0}, {1})}},
      {4, 0, B({2}, {2}), {B({2}, {2})}},
      {8, 0, B({0}, {2}), {B({0}, {2})}},
      {9, 0, B({}, {}), {B({}, {})}},
      {12, 0, B({0}, {1}), {B({0}, {1})}},
      {14, 0, B({0}, {1}), {B({0}, {1})}},
      {0, 1, B({3, 0}, {2, 2}), {B({3, 0}, {2, 2})}},
      {2, 1, B({1, 0}, {1, 3}), {B({1, 0}, {1, 3})}},
      {3, 1, B({0, 1}, {2, 1}), {B({0, 1}, {1, 1}), B({1, 1}, {1, 1})}},
      {8, 1, B({2}, {2}), {B({2}, {2})}},
      {12, 1, B({1}, {1}), {B({1}, {1})}},
      {14, 1, B({1}, {1}), {B({1}, {1})}},
      {0, 2, B({5, 0}, {2, 2}), {B({5, 0}, {2, 2})}},
      {4, 2, B({1}, {1}), {B({1}, {1})}},
      {8, 2, B({4}, {1}), {B({4}, {1})}},
      {10, 2, B({0, 0}, {1, 2}), {B({0, 0}, {1, 2})}},
      {14, 2, B({2}, {1}), {B({2}, {1})}},
  };

  Manifest& m = s.expected;
  m.library_version = "0.2.0";
  m.world_size = kWorld;
  m.save_counter = 4;
  m.created_unix = 1795628571;
  m.packed_bytes = kPackedBytes;
  const std::string V = "/.ATTRIBUTES/VARIABLE_VALUE";
  m.nodes = {{"root", "", {}, {}, ""},
             {"node", "model", {{"back", 0}, {"a.b/c", 19}, {"grid", 20}}, {}, ""},
             {"optimizer", "opt", {}, {{5, "m", 21}, {19, "v", 22}, {6, "x", 20}}, ""},
             {"state", "st", {}, {}, "st/.ATTRIBUTES/STATE"},
             {"state", "gs", {}, {}, "gs/.ATTRIBUTES/STATE"}};
  m.nodes[0].children = {{"model", 1}, {"opt", 2}, {"st", 3}, {"gs", 4}};
  for (int i = 0; i < 13; ++i) {
    const std::string name = "v" + std::to_string(i);
    m.nodes[0].children.push_back({name, 5 + i});
    m.nodes.push_back({"variable", name, {}, {}, name + V});
  }
  m.nodes[0].children.push_back({"gs2", 18});
  m.nodes[0].children.push_back({"alias", 1});
  m.nodes.push_back({"state", "gs2", {}, {}, "gs2/.ATTRIBUTES/STATE"});
  m.nodes.push_back({"variable", "model/a..b.Sc", {}, {}, "model/a..b.Sc" + V});
  m.nodes.push_back({"node", "model/grid", {}, {}, ""});
  m.nodes.push_back(
      {"variable", "v0/.OPTIMIZER_SLOT/opt/m", {}, {}, "v0/.OPTIMIZER_SLOT/opt/m" + V});
  m.nodes.push_back({"variable",
                     "model/a..b.Sc/.OPTIMIZER_SLOT/opt/v",
                     {},
                     {},
                     "model/a..b.Sc/.OPTIMIZER_SLOT/opt/v" + V});
  const std::vector<std::string> layouts = {
      "block(axis=0)",     "replicated",    "grid(3)",           "grid(1x3)",
      "explicit(3 boxes)", "replicated",    "block(axis=0)",     "replicated",
      "block(axis=0)",     "block(axis=0)", "explicit(1 boxes)", "replicated",
      "block(axis=0)",     "replicated",    "block(axis=0)",     "replicated"};
  for (std::size_t i = 0; i < g.tensors.size(); ++i) {
    const TableTensor& t = g.tensors[i];
    TensorRecord r;
    r.key = m.nodes[t.node].value_key;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.layout = layouts[i];
    r.packed = t.packed;
    if (!t.packed) r.dataset = "/tensors/" + r.key;
    m.tensors.push_back(r);
  }
  for (const HandPiece& p : replicated) {
    const TableTensor& t = g.tensors[p.tensor];
    const uint32_t number = static_cast<uint32_t>(m.tensors[p.tensor].boxes.size());
    const TablePiece e{p.tensor, number, ++sum, next_offset(t, p.piece)};
    g.replicated.push_back(e);
    m.tensors[p.tensor].boxes.push_back(
        {p.writer, p.piece, {PieceRecord{p.piece, e.checksum, e.packed_offset}}});
  }
  m.states = {{"st/.ATTRIBUTES/STATE", SavedScope::kPerRank, {}},
              {"gs/.ATTRIBUTES/STATE", SavedScope::kGlobal, {}},
              {"gs2/.ATTRIBUTES/STATE", SavedScope::kGlobal, {}}};
  for (uint32_t st : {1u, 2u}) {
    const TableBlob b{st, st % kWorld, ++sum, packed, 10};
    packed += 10;
    g.global_blobs.push_back(b);
    m.states[st].blobs.push_back(
        {static_cast<int>(b.writer), b.packed_offset, b.bytes, b.checksum});
  }
  for (int rank = 0; rank < kWorld; ++rank) {
    RankRecord rec;
    rec.rank = rank;
    uint32_t last_tensor = 0, number = 0;
    for (const HandBox& hb : boxes) {
      if (hb.rank != rank) continue;
      if (hb.tensor != last_tensor) number = 0;
      last_tensor = hb.tensor;
      WrittenBox wb{rank, hb.box, {}};
      for (const Box& piece : hb.pieces) {
        const RecordPiece e{hb.tensor, number++, ++sum, next_offset(g.tensors[hb.tensor], piece)};
        rec.pieces.push_back(e);
        wb.pieces.push_back({piece, e.checksum, e.packed_offset});
      }
      m.tensors[hb.tensor].boxes.push_back(std::move(wb));
    }
    const RecordBlob b{0, ++sum, packed, 5 + rank};
    packed += b.bytes;
    rec.blobs.push_back(b);
    m.states[0].blobs.push_back({rank, b.packed_offset, b.bytes, b.checksum});
    s.records.push_back(std::move(rec));
  }
  EXPECT_LE(packed, kPackedBytes);
  return s;
}

// A chain root -> n1 -> n2 -> ... of `depth` nodes, the last holding a tensor.
GlobalTable chain(uint32_t depth) {
  GlobalTable g;
  g.nodes.push_back({"root"});
  for (uint32_t i = 1; i <= depth; ++i) {
    g.nodes.push_back({"node"});
    g.edges.push_back({i - 1, i, "n.d"});
  }
  g.nodes.back() = {"variable", NodeValue::kTensor, 0};
  g.tensors.push_back(tensor(depth, DType::kF32, true, LayoutRule::kReplicated, {1}));
  g.replicated.push_back({0, 0, 7, 0});
  return g;
}

void expect_error(const std::function<void()>& decode, const std::string& needle,
                  const std::string& names, ErrorCode code) {
  try {
    decode();
    FAIL() << "accepted; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), code) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_NE(what.find(names), std::string::npos) << "does not name '" << names << "': " << what;
    EXPECT_NE(what.find("ck.h5"), std::string::npos) << what;
  }
}

void put32(std::string& b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<uint64_t>(i)] = static_cast<char>(v >> (8 * i));
}
void put64(std::string& b, uint64_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + static_cast<uint64_t>(i)] = static_cast<char>(v >> (8 * i));
}
uint64_t get64(const std::string& b, uint64_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(b[at + static_cast<uint64_t>(i)])) << (8 * i);
  return v;
}
// The encoder writes the directory in id order: entry of section `id` is at 16 + 24 (id - 1).
uint64_t entry(uint32_t id) {
  return 16 + 24 * (id - 1);
}
uint64_t section_offset(const std::string& b, uint32_t id) {
  return get64(b, entry(id) + 8);
}

}  // namespace cairn::table_testing
