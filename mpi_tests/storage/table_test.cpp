// SPDX-License-Identifier: Apache-2.0
// The format 2.0 metadata codec: header, global table and records round-trip byte for byte, the
// manifest built from them equals one built by hand, the layout rules agree with Layout, and every
// rule of docs/format.md's "Table consistency" and of the records rejects damage by name.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "storage/checksum.hpp"
#include "storage/table.hpp"
#include "storage/table_internal.hpp"

namespace cairn {
namespace {

constexpr int kWorld = 3;
constexpr int64_t kPieceBytes = 8;
constexpr int64_t kPackedBytes = 1000;

// One box a rank wrote, with its pieces, for the sample's hand-written expectation.
struct HandBox {
  uint32_t tensor;
  int rank;
  Box box;
  std::vector<Box> pieces;
};

struct Sample {
  Header header;
  GlobalTable table;
  std::vector<RankRecord> records;
  Manifest expected;  // built by hand
};

Box B(Shape offset, Shape count) {
  return Box{std::move(offset), std::move(count)};
}

TableTensor tensor(uint32_t node, DType dtype, bool packed, LayoutRule layout, Shape shape,
                   std::vector<int64_t> params = {}, std::vector<TableBox> boxes = {}) {
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

void expect_same(const Manifest& a, const Manifest& b) {
  EXPECT_EQ(a.format_major, b.format_major);
  EXPECT_EQ(a.format_minor, b.format_minor);
  EXPECT_EQ(a.library_version, b.library_version);
  EXPECT_EQ(a.world_size, b.world_size);
  EXPECT_EQ(a.save_counter, b.save_counter);
  EXPECT_EQ(a.created_unix, b.created_unix);
  EXPECT_EQ(a.packed_bytes, b.packed_bytes);
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (std::size_t i = 0; i < a.nodes.size(); ++i) {
    SCOPED_TRACE("node " + std::to_string(i));
    EXPECT_EQ(a.nodes[i].kind, b.nodes[i].kind);
    EXPECT_EQ(a.nodes[i].path, b.nodes[i].path);
    EXPECT_EQ(a.nodes[i].children, b.nodes[i].children);
    EXPECT_EQ(a.nodes[i].value_key, b.nodes[i].value_key);
    ASSERT_EQ(a.nodes[i].slots.size(), b.nodes[i].slots.size());
    for (std::size_t j = 0; j < a.nodes[i].slots.size(); ++j) {
      EXPECT_EQ(a.nodes[i].slots[j].variable, b.nodes[i].slots[j].variable);
      EXPECT_EQ(a.nodes[i].slots[j].name, b.nodes[i].slots[j].name);
      EXPECT_EQ(a.nodes[i].slots[j].slot, b.nodes[i].slots[j].slot);
    }
  }
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorRecord &x = a.tensors[i], &y = b.tensors[i];
    SCOPED_TRACE(x.key);
    EXPECT_EQ(x.key, y.key);
    EXPECT_EQ(x.dtype, y.dtype);
    EXPECT_EQ(x.shape, y.shape);
    EXPECT_EQ(x.layout, y.layout);
    EXPECT_EQ(x.packed, y.packed);
    EXPECT_EQ(x.dataset, y.dataset);
    ASSERT_EQ(x.boxes.size(), y.boxes.size());
    for (std::size_t j = 0; j < x.boxes.size(); ++j) {
      EXPECT_EQ(x.boxes[j].rank, y.boxes[j].rank);
      EXPECT_EQ(x.boxes[j].box, y.boxes[j].box) << x.boxes[j].box.to_string();
      ASSERT_EQ(x.boxes[j].pieces.size(), y.boxes[j].pieces.size()) << x.boxes[j].box.to_string();
      for (std::size_t k = 0; k < x.boxes[j].pieces.size(); ++k) {
        EXPECT_EQ(x.boxes[j].pieces[k].box, y.boxes[j].pieces[k].box);
        EXPECT_EQ(x.boxes[j].pieces[k].checksum, y.boxes[j].pieces[k].checksum);
        EXPECT_EQ(x.boxes[j].pieces[k].packed_offset, y.boxes[j].pieces[k].packed_offset);
      }
    }
  }
  ASSERT_EQ(a.states.size(), b.states.size());
  for (std::size_t i = 0; i < a.states.size(); ++i) {
    EXPECT_EQ(a.states[i].key, b.states[i].key);
    EXPECT_EQ(a.states[i].scope, b.states[i].scope);
    ASSERT_EQ(a.states[i].blobs.size(), b.states[i].blobs.size());
    for (std::size_t j = 0; j < a.states[i].blobs.size(); ++j) {
      EXPECT_EQ(a.states[i].blobs[j].rank, b.states[i].blobs[j].rank);
      EXPECT_EQ(a.states[i].blobs[j].packed_offset, b.states[i].blobs[j].packed_offset);
      EXPECT_EQ(a.states[i].blobs[j].bytes, b.states[i].blobs[j].bytes);
      EXPECT_EQ(a.states[i].blobs[j].checksum, b.states[i].blobs[j].checksum);
    }
  }
}

TEST(Table, HeaderRoundTrips) {
  const Header h = sample().header;
  const std::string text = encode_header(h);
  EXPECT_EQ(text.find("\"created_unix\""), 1u) << text;  // members in lexicographic order
  const Header back = decode_header(text, "ck.h5");
  EXPECT_EQ(back.format_major, kFormatMajor);
  EXPECT_EQ(back.format_minor, kFormatMinor);
  EXPECT_EQ(back.library_version, h.library_version);
  EXPECT_EQ(back.world_size, h.world_size);
  EXPECT_EQ(back.save_counter, h.save_counter);
  EXPECT_EQ(back.created_unix, h.created_unix);
  EXPECT_EQ(back.packed_bytes, h.packed_bytes);
  EXPECT_EQ(back.piece_bytes, h.piece_bytes);
  EXPECT_EQ(back.pack_threshold_bytes, h.pack_threshold_bytes);
  EXPECT_EQ(encode_header(back), text);
}

TEST(Table, TableAndRecordsRoundTripByteForByte) {
  const Sample s = sample();
  const std::string bytes = encode_table(s.table);
  const GlobalTable back = decode_table(bytes, s.header, "ck.h5");
  EXPECT_EQ(encode_table(back), bytes);
  for (const RankRecord& r : s.records) {
    const std::string rec = encode_record(r);
    const RankRecord again = decode_record(rec, r.rank, back, s.header, "ck.h5");
    EXPECT_EQ(encode_record(again), rec) << "rank " << r.rank;
    EXPECT_EQ(rec.size(), 40 + 24 * r.pieces.size() + 32 * r.blobs.size());
  }
}

TEST(Table, ManifestEqualsTheOneBuiltByHand) {
  const Sample s = sample();
  const GlobalTable table = decode_table(encode_table(s.table), s.header, "ck.h5");
  Manifest m = manifest_from_table(s.header, table);
  for (const RankRecord& r : s.records)
    add_record(m, table, s.header, decode_record(encode_record(r), r.rank, table, s.header, "ck"));
  expect_same(m, s.expected);
}

TEST(Table, WriterBoxesAndPiecesMatchTheHandWrittenOnes) {
  const Sample s = sample();
  for (const TableTensor& t : s.table.tensors) {
    if (t.layout == LayoutRule::kReplicated) continue;
    // table_layout gives the Layout the save path uses: same boxes, minus the empty ones.
    const Layout layout = table_layout(t, kWorld);
    for (int w = 0; w < kWorld; ++w) {
      std::vector<Box> expected;
      for (const Box& b : layout.boxes_for(w, kWorld, t.shape))
        if (!b.empty()) expected.push_back(b);
      EXPECT_EQ(writer_boxes(t, w, kWorld), expected) << layout.describe() << " writer " << w;
    }
  }
  EXPECT_EQ(box_pieces(s.table.tensors[0], B({0, 0}, {3, 2}), kPieceBytes),
            (std::vector<Box>{B({0, 0}, {2, 2}), B({2, 0}, {1, 2})}));
  EXPECT_EQ(box_pieces(s.table.tensors[2], B({0, 0}, {2, 3}), kPieceBytes),
            (std::vector<Box>{B({0, 0}, {2, 3})}));  // packed: the box itself
}

TEST(Table, PieceCountsWithoutCuttingEqualSplitBox) {
  int cases = 0;
  for (DType dtype : {DType::kU8, DType::kF16, DType::kF32, DType::kF64})
    for (const Shape& count : std::vector<Shape>{
             {}, {0}, {1}, {7}, {3, 5}, {4, 0, 2}, {2, 3, 4}, {5, 1, 9}, {1, 1, 1, 13}})
      for (int64_t piece_bytes : {1, 2, 3, 8, 20, 40, 64, 1000})
        for (bool packed : {false, true}) {
          TableTensor t = tensor(0, dtype, packed, LayoutRule::kBlock, count, {0});
          const Box box{Shape(count.size(), 1), count};
          EXPECT_EQ(detail::box_piece_count(t, box, piece_bytes),
                    static_cast<int64_t>(box_pieces(t, box, piece_bytes).size()))
              << box.to_string() << " " << piece_bytes;
          ++cases;
        }
  EXPECT_GT(cases, 500);
  // Far too many to cut: counted, saturating instead of overflowing.
  const TableTensor huge =
      tensor(0, DType::kU8, false, LayoutRule::kBlock, {int64_t{1} << 40, int64_t{1} << 40}, {0});
  EXPECT_EQ(detail::box_piece_count(huge, Box::whole(huge.shape), 1),
            std::numeric_limits<int64_t>::max());
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

TEST(Table, DeepChainGrowsLinearlyAndDecodesItsPaths) {
  Header h;
  h.packed_bytes = 4;
  const std::string half = encode_table(chain(5000));
  const std::string full = encode_table(chain(10000));
  EXPECT_LT(static_cast<double>(full.size()) / static_cast<double>(half.size()), 2.1)
      << half.size() << " -> " << full.size();
  const GlobalTable back = decode_table(full, h, "ck.h5");
  const Manifest m = manifest_from_table(h, back);
  std::string path = "n..d";
  for (int i = 2; i <= 10000; ++i) path += "/n..d";
  EXPECT_EQ(m.nodes.back().path, path);
  EXPECT_EQ(m.nodes[3].path, "n..d/n..d/n..d");
  EXPECT_EQ(m.tensors[0].key, path + "/.ATTRIBUTES/VARIABLE_VALUE");
}

std::vector<int> brute_force(const TableTensor& t, const Box& region, int world) {
  std::vector<int> out;
  const Layout layout = table_layout(t, world);
  for (int w = 0; w < world; ++w)
    for (const Box& b : layout.boxes_for(w, world, t.shape))
      if (!b.empty() && intersect(b, region)) {
        out.push_back(w);
        break;
      }
  return out;
}

TEST(Table, WritersIntersectingMatchesBruteForce) {
  int cases = 0;
  for (int world : {1, 2, 3, 4, 7, 12}) {
    std::vector<TableTensor> tensors;
    for (int64_t extent : {0, 1, 2, 5, 7, 13}) {
      tensors.push_back(tensor(0, DType::kF32, false, LayoutRule::kBlock, {extent, 3}, {0}));
      tensors.push_back(tensor(0, DType::kF32, false, LayoutRule::kBlock, {3, extent}, {1}));
      // grids: world = a * b
      for (int a = 1; a <= world; ++a)
        if (world % a == 0)
          tensors.push_back(
              tensor(0, DType::kF32, false, LayoutRule::kGrid, {extent, 5}, {a, world / a}));
    }
    // explicit: stripes of [13], rank r owning stripes r, r + world, ..., rank world-1 maybe none
    std::vector<TableBox> stripes;
    for (int64_t i = 0, r = 0; i < 13; i += 2, r = (r + 1) % std::max(1, world - 1))
      stripes.push_back({static_cast<uint32_t>(r), B({i}, {std::min<int64_t>(2, 13 - i)})});
    tensors.push_back(tensor(0, DType::kF32, false, LayoutRule::kExplicit, {13}, {}, stripes));
    for (const TableTensor& t : tensors) {
      const Shape& shape = t.shape;
      std::vector<Box> regions = {Box::whole(shape)};
      for (int64_t lo = 0; lo <= shape[0]; ++lo)
        for (int64_t hi = lo; hi <= shape[0]; ++hi) {
          Box r = Box::whole(shape);
          r.offset[0] = lo;
          r.count[0] = hi - lo;
          if (shape.size() > 1 && shape[1] > 1) {
            r.offset[1] = shape[1] / 2;
            r.count[1] = shape[1] - shape[1] / 2;
          }
          regions.push_back(r);
        }
      for (const Box& region : regions) {
        EXPECT_EQ(writers_intersecting(t, region, world), brute_force(t, region, world))
            << table_layout(t, world).describe() << " shape " << shape_to_string(shape)
            << " region " << region.to_string() << " world " << world;
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 1000);
}

// ---------------------------------------------------------------------------------------------
// Damage: one test per rule.

void expect_error(const std::function<void()>& decode, const std::string& needle,
                  const std::string& names, ErrorCode code = ErrorCode::kCorrupt) {
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

// Decodes the sample's table after `change`.
void expect_table_error(const std::function<void(GlobalTable&, Header&)>& change,
                        const std::string& needle, const std::string& names,
                        ErrorCode code = ErrorCode::kCorrupt) {
  Sample s = sample();
  change(s.table, s.header);
  const std::string bytes = encode_table(s.table);
  expect_error([&] { decode_table(bytes, s.header, "ck.h5"); }, needle, names, code);
}

void expect_bytes_error(const std::function<void(std::string&)>& change, const std::string& needle,
                        const std::string& names = "table:") {
  const Sample s = sample();
  std::string bytes = encode_table(s.table);
  change(bytes);
  expect_error([&] { decode_table(bytes, s.header, "ck.h5"); }, needle, names);
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

const std::string kV0 = "v0/.ATTRIBUTES/VARIABLE_VALUE";

TEST(TableDamage, Preamble) {
  expect_bytes_error([](std::string& b) { b.resize(10); }, "preamble");
  expect_bytes_error([](std::string& b) { b[0] = 'X'; }, "bad magic");
  expect_bytes_error([](std::string& b) { put32(b, 8, 3); }, "major version 3");
}

TEST(TableDamage, Directory) {
  expect_bytes_error([](std::string& b) { put32(b, 12, 1u << 30); }, "directory of");
  expect_bytes_error([](std::string& b) { put32(b, entry(2), 1); }, "section id 1 appears twice");
  expect_bytes_error([](std::string& b) { put32(b, entry(4), 99); }, "section slots is missing");
  expect_bytes_error([](std::string& b) { put32(b, entry(2) + 4, 8); },
                     "nodes has elements of 8 bytes, expected at least 16");
  expect_bytes_error([](std::string& b) { put64(b, entry(3) + 8, b.size()); }, "section edges");
  // A count of 2^60 is refused before anything is allocated for it.
  expect_bytes_error([](std::string& b) { put64(b, entry(5) + 16, uint64_t{1} << 60); },
                     "lies outside the table");
  expect_bytes_error([](std::string& b) { put64(b, entry(1) + 16, uint64_t{1} << 62); },
                     "section strings");
}

TEST(Table, UnknownSectionsAndLongerElementsAreIgnored) {
  // What a newer minor version may add: a section of an unknown id (here an 11th directory entry,
  // which shifts every section by 24 bytes) and fields appended to elements (nodes of 20 bytes).
  const Sample s = sample();
  const std::string t = encode_table(s.table);
  std::string grown = t.substr(0, 256) + std::string(24, '\0') + t.substr(256);
  put32(grown, 12, 11);
  for (uint32_t id = 1; id <= 10; ++id) put64(grown, entry(id) + 8, section_offset(grown, id) + 24);
  put32(grown, entry(11), 4242);
  put32(grown, entry(11) + 4, 3);
  put64(grown, entry(11) + 8, grown.size());
  put64(grown, entry(11) + 16, 2);
  grown += "xyzxyz";
  const uint64_t nodes_at = section_offset(grown, 2);
  const uint64_t moved = grown.size();
  for (std::size_t i = 0; i < s.table.nodes.size(); ++i)
    grown += grown.substr(nodes_at + 16 * i, 16) + "abcd";
  put32(grown, entry(2) + 4, 20);
  put64(grown, entry(2) + 8, moved);
  const GlobalTable back = decode_table(grown, s.header, "ck.h5");
  EXPECT_EQ(encode_table(back), t);
}

TEST(TableDamage, StringOutOfBounds) {
  expect_bytes_error([](std::string& b) { put32(b, section_offset(b, 2) + 16 * 1 + 4, 1000000); },
                     "outside the strings section", "node 1");
}

TEST(TableDamage, Graph) {
  expect_table_error([](GlobalTable& g, Header&) { g.nodes.clear(); }, "no nodes", "table:");
  expect_table_error([](GlobalTable& g, Header&) { g.nodes[0].kind = "node"; }, "expected 'root'",
                     "table:");
  // Node 20 loses its edge and its slot record: it has no path.
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.edges.pop_back();
        g.slots.pop_back();
      },
      "has no path", "node 20");
  // Slot-only node 21's slot record names a later variable, or a later optimizer.
  expect_table_error([](GlobalTable& g, Header&) { g.slots[0].variable = 22; }, "has no path",
                     "node 21");
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.nodes.push_back({"optimizer"});
        g.slots[0].optimizer = 23;
      },
      "has no path", "node 21");
  // Node 19's only incoming edge comes from node 20.
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.edges.erase(g.edges.end() - 2);
        g.edges.push_back({20, 19, "z"});
      },
      "is not before it", "node 19");
  expect_table_error([](GlobalTable& g, Header&) { g.edges[3].child = 999; }, "to node 999 of 23",
                     "table:");
  expect_table_error([](GlobalTable& g, Header&) { g.edges[3].name.clear(); }, "empty name",
                     "node 0");
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.edges.push_back({0, 3, "late"});
      },
      "not grouped by increasing parent", "node 0");
  expect_table_error([](GlobalTable& g, Header&) { g.slots[0].variable = 999; },
                     "refers to a node outside", "slot 'm'");
}

TEST(TableDamage, Values) {
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[0].node = 999; },
                     "belongs to node 999", "tensor 0");
  // Tensor 1 claims node 5, which names tensor 0: two values on one node.
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[1].node = 5; },
                     "does not name it as its value", kV0);
  expect_table_error([](GlobalTable& g, Header&) { g.nodes[6].value = 7; },
                     "does not name it as its value", "v1/.ATTRIBUTES/VARIABLE_VALUE");
  expect_table_error([](GlobalTable& g, Header&) { g.states[0].node = 4; },
                     "does not name it as its value", "gs/.ATTRIBUTES/STATE");
  expect_table_error([](GlobalTable& g, Header&) { g.edges[5].name = "v0"; },
                     "the key appears twice", kV0);
}

TEST(TableDamage, Codes) {
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[0].dtype = static_cast<DType>(13); },
                     "unknown dtype code 13", kV0);
  // The same in a file of a newer minor version is a version error: not damage.
  expect_table_error(
      [](GlobalTable& g, Header& h) {
        g.tensors[0].dtype = static_cast<DType>(13);
        h.format_minor = kFormatMinor + 1;
      },
      "upgrade cairn", kV0, ErrorCode::kVersion);
  expect_table_error(
      [](GlobalTable& g, Header&) { g.tensors[0].layout = static_cast<LayoutRule>(4); },
      "unknown layout code 4", kV0);
  expect_table_error(
      [](GlobalTable& g, Header&) { g.nodes[3].value_kind = static_cast<NodeValue>(3); },
      "unknown value kind 3", "node 3");
  expect_bytes_error([](std::string& b) { b[section_offset(b, 5) + 5] = 2; },
                     "unknown storage code 2", kV0);
  expect_bytes_error([](std::string& b) { b[section_offset(b, 9) + 4] = 2; },
                     "unknown scope code 2", "st/.ATTRIBUTES/STATE");
}

TEST(TableDamage, Shapes) {
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[1].shape = Shape(33, 1); }, "33 axes",
                     "v1/");
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[1].shape = {-1}; }, "negative extent",
                     "v1/");
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.tensors[1].shape = {int64_t{1} << 40, int64_t{1} << 20};
      },
      "2^56 bytes", "v1/");
  // A shape index past the dims section.
  expect_bytes_error([](std::string& b) { put32(b, section_offset(b, 5) + 8, 1u << 30); },
                     "the shape", kV0);
}

TEST(TableDamage, Layouts) {
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[0].params = {2}; },
                     "block axis 2 lies outside shape [7, 2]", kV0);
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.tensors[3].params = {1, 2};
      },
      "has 2 cells, but the job had 3 ranks", "v3/");
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.tensors[3].params = {1, 1, 3};
      },
      "grid of 3 axes", "v3/");
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.tensors[0].params = {0, 1};
      },
      "a block layout with 2 parameters", kV0);
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[4].boxes[1].box = B({3}, {2}); },
                     "lies outside shape [4]", "v4/");
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[4].boxes[1].rank = 3; },
                     "written by rank 3 of a 3-rank job", "v4/");
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[4].boxes[1].box = B({0}, {2}); },
                     "overlap", "v4/");
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[4].boxes.pop_back(); },
                     "cover 2 of the 4 elements", "v4/");
  // A box naming another tensor (the encoder writes the right one: patch it).
  expect_bytes_error([](std::string& b) { put32(b, section_offset(b, 7), 3); },
                     "names tensor 3, expected 4", "v4/");
}

TEST(TableDamage, Replicated) {
  const std::string v1 = "v1/.ATTRIBUTES/VARIABLE_VALUE";
  expect_table_error([](GlobalTable& g, Header&) { g.replicated.erase(g.replicated.begin() + 1); },
                     "expected piece 1 of tensor 1", v1);
  expect_table_error([](GlobalTable& g, Header&) { std::swap(g.replicated[0], g.replicated[1]); },
                     "expected piece 0 of tensor 1", v1);
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.replicated.push_back({0, 0, 1, -1});
      },
      "not a piece of a replicated tensor", kV0);
  expect_table_error([](GlobalTable& g, Header&) { g.replicated[2].packed_offset = 999; },
                     "lies outside the packed data", "v5/");
  expect_table_error([](GlobalTable& g, Header&) { g.replicated[0].packed_offset = 0; },
                     "has packed offset 0, expected -1", v1);
  // More pieces than piece_bytes gives: piece_bytes 16 cuts v1 [5] bf16 into one piece.
  expect_table_error([](GlobalTable&, Header& h) { h.piece_bytes = 16; },
                     "is piece 1 of tensor 1, expected piece 0 of tensor 5", "v5/");
}

TEST(TableDamage, GlobalBlobs) {
  const std::string gs = "gs/.ATTRIBUTES/STATE", gs2 = "gs2/.ATTRIBUTES/STATE";
  expect_table_error([](GlobalTable& g, Header&) { g.global_blobs.pop_back(); }, "has no blob",
                     gs2);
  expect_table_error([](GlobalTable& g, Header&) { g.global_blobs[0].writer = 0; },
                     "written by rank 0, expected 1", gs);
  expect_table_error([](GlobalTable& g, Header&) { g.global_blobs[0].state = 2; },
                     "is of state 2, expected 1", gs);
  expect_table_error([](GlobalTable& g, Header&) { g.global_blobs.push_back(g.global_blobs[0]); },
                     "3 blobs for 2 global states", "table:");
  expect_table_error([](GlobalTable& g, Header&) { g.global_blobs[1].packed_offset = 995; },
                     "lies outside the packed data", gs2);
}

TEST(HeaderDamage, VersionsAndMembers) {
  const std::string ok = encode_header(sample().header);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = ok;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  const std::string current = std::to_string(kFormatMajor) + "." + std::to_string(kFormatMinor);
  const std::string newer = std::to_string(kFormatMajor + 1) + ".0";
  expect_error([&] { decode_header(with(current, newer), "ck.h5"); },
               "checkpoint format " + newer + " is newer than this cairn reads", "upgrade cairn",
               ErrorCode::kVersion);
  const Header old = decode_header(with(current, "1.1"), "ck.h5");
  EXPECT_EQ(old.format_major, 1);
  EXPECT_EQ(old.format_minor, 1);
  expect_error([&] { decode_header(with(current, "0.9"), "ck.h5"); }, "bad format_version",
               "header:");
  expect_error([&] { decode_header(with(current, "2.x"), "ck.h5"); }, "bad format_version",
               "header:");
  expect_error([&] { decode_header(with("\"piece_bytes\":8", "\"piece_bytes\":0"), "ck.h5"); },
               "piece_bytes 0 is out of range", "header:");
  expect_error([&] { decode_header(with("\"world_size\":3", "\"world_size\":0"), "ck.h5"); },
               "world_size 0", "header:");
  expect_error([&] { decode_header(with("\"packed_bytes\":1000,", ""), "ck.h5"); },
               "malformed JSON", "header:");
  expect_error([&] { decode_header(with("cairn-checkpoint", "other"), "ck.h5"); },
               "not a cairn checkpoint", "header:");
  expect_error([&] { decode_header("{\"format\":", "ck.h5"); }, "malformed JSON", "header:");
}

// ---------------------------------------------------------------------------------------------
// Records

void expect_record_error(int rank, const std::function<void(RankRecord&)>& change,
                         const std::string& needle, const std::string& names) {
  const Sample s = sample();
  RankRecord r = s.records[static_cast<std::size_t>(rank)];
  change(r);
  const std::string bytes = encode_record(r);
  expect_error([&] { decode_record(bytes, rank, s.table, s.header, "ck.h5"); }, needle,
               "record of rank " + std::to_string(rank));
  expect_error([&] { decode_record(bytes, rank, s.table, s.header, "ck.h5"); }, needle, names);
}

void expect_record_bytes_error(int rank, const std::function<void(std::string&)>& change,
                               const std::string& needle, int decode_as = -1) {
  const Sample s = sample();
  std::string bytes = encode_record(s.records[static_cast<std::size_t>(rank)]);
  change(bytes);
  const int as = decode_as < 0 ? rank : decode_as;
  expect_error([&] { decode_record(bytes, as, s.table, s.header, "ck.h5"); }, needle,
               "record of rank " + std::to_string(as));
}

TEST(RecordDamage, Framing) {
  expect_record_bytes_error(
      0, [](std::string& b) { b.resize(30); }, "40-byte header");
  expect_record_bytes_error(
      0, [](std::string& b) { b.pop_back(); }, "its header describes");
  expect_record_bytes_error(
      0, [](std::string& b) { b[3] = 'x'; }, "bad magic");
  expect_record_bytes_error(
      0, [](std::string&) {}, "says it is rank 0's", 1);
  expect_record_bytes_error(
      1, [](std::string& b) { b[50] ^= 1; }, "checksum");
  expect_record_bytes_error(
      0, [](std::string& b) { b[12] = 16; }, "expected at least 24");
  // Counts of 2^60: refused before anything is allocated for them.
  expect_record_bytes_error(
      0, [](std::string& b) { put64(b, 16, uint64_t{1} << 60); }, "its header describes");
  expect_record_bytes_error(
      0, [](std::string& b) { put64(b, 24, uint64_t{1} << 60); }, "its header describes");
}

TEST(RecordDamage, Pieces) {
  const std::string slot_m = "v0/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE";
  expect_record_error(
      0, [](RankRecord& r) { r.pieces.pop_back(); }, "ends before piece 0 of tensor 14", slot_m);
  expect_record_error(
      0,
      [](RankRecord& r) {
        r.pieces.push_back({14, 1, 5, 0});
      },
      "not a piece this rank wrote", slot_m);
  expect_record_error(
      0, [](RankRecord& r) { std::swap(r.pieces[0], r.pieces[1]); },
      "entry 0 is piece 1 of tensor 0, expected piece 0 of tensor 0", kV0);
  expect_record_error(
      0, [](RankRecord& r) { r.pieces.erase(r.pieces.begin()); },
      "entry 0 is piece 1 of tensor 0, expected piece 0", kV0);
  expect_record_error(
      1,
      [](RankRecord& r) {
        r.pieces.push_back({1, 0, 5, -1});
      },
      "of a replicated tensor", "v1/.ATTRIBUTES/VARIABLE_VALUE");
  // Tensor 2 (f32 [1, 3], packed) takes 12 bytes: 990 + 12 > 1000.
  expect_record_error(
      1, [](RankRecord& r) { r.pieces[1].packed_offset = 990; }, "lies outside the packed data",
      "v2/");
  expect_record_error(
      1, [](RankRecord& r) { r.pieces[0].packed_offset = 4; }, "has packed offset 4, expected -1",
      kV0);
  // Rank 2's box of tensor 4 is on rank 0 in this record: the pieces do not match.
  expect_record_error(
      2, [](RankRecord& r) { r.pieces[1].tensor = 5; }, "expected piece 0 of tensor 4", "v4/");
}

TEST(RecordDamage, Blobs) {
  expect_record_error(
      2, [](RankRecord& r) { r.blobs.clear(); }, "no blob for per-rank state 0",
      "st/.ATTRIBUTES/STATE");
  expect_record_error(
      2, [](RankRecord& r) { r.blobs.push_back(r.blobs[0]); }, "2 blobs for 1 per-rank states",
      "ck.h5");
  expect_record_error(
      2, [](RankRecord& r) { r.blobs[0].state = 1; }, "is of state 1, expected per-rank state 0",
      "st/.ATTRIBUTES/STATE");
  expect_record_error(
      2, [](RankRecord& r) { r.blobs[0].packed_offset = 998; }, "lies outside the packed data",
      "st/.ATTRIBUTES/STATE");
}

TEST(TableDamage, PathsOfTerabytesAreRefusedBeforeTheyAreBuilt) {
  // 3000 nodes deep, every edge named by the same 1000-byte string: a table of 97 kB whose paths
  // would total 4.5 GB.
  GlobalTable g = chain(3000);
  for (TableEdge& e : g.edges) e.name = std::string(1000, 'x');
  Header h;
  h.packed_bytes = 4;
  const std::string bytes = encode_table(g);
  EXPECT_LT(bytes.size(), 100000u);
  expect_error([&] { decode_table(bytes, h, "ck.h5"); }, "paths total more than", "node ");
}

TEST(Table, ExplicitTilingsAlongAnInnerAxisAreCheckedInOnePass) {
  // 50,000 column boxes: comparing every pair would take minutes, sweeping along axis 1 is
  // immediate. An overlap along that axis is still found.
  GlobalTable g = chain(1);
  std::vector<TableBox> boxes;
  for (int64_t i = 0; i < 50000; ++i)
    boxes.push_back({static_cast<uint32_t>(i % kWorld), B({0, i}, {2, 1})});
  g.tensors[0] = tensor(1, DType::kU8, false, LayoutRule::kExplicit, {2, 50000}, {}, boxes);
  g.replicated.clear();
  Header h;
  h.world_size = kWorld;
  const GlobalTable back = decode_table(encode_table(g), h, "ck.h5");
  EXPECT_EQ(back.tensors[0].boxes.size(), 50000u);
  EXPECT_EQ(writers_intersecting(back.tensors[0], B({0, 7}, {1, 3}), kWorld),
            (std::vector<int>{0, 1, 2}));
  g.tensors[0].boxes[100].box = B({0, 100}, {2, 2});
  g.tensors[0].boxes.erase(g.tensors[0].boxes.begin() + 30000);
  expect_error([&] { decode_table(encode_table(g), h, "ck.h5"); },
               "explicit boxes [0:2, 100:102] (rank 1) and [0:2, 101:102] (rank 2) overlap",
               "n..d/.ATTRIBUTES/VARIABLE_VALUE");
}

}  // namespace
}  // namespace cairn
