// SPDX-License-Identifier: Apache-2.0
// The format 2.0 metadata codec: header, global table and records round-trip byte for byte, the
// manifest built from them equals one built by hand, and the layout rules agree with Layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "storage/checksum.hpp"
#include "storage/table.hpp"
#include "storage/table_internal.hpp"
#include "table_sample.hpp"

namespace cairn::table_testing {
namespace {

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
        const std::vector<int> expected = brute_force(t, region, world);
        EXPECT_EQ(writers_intersecting(t, region, world), expected)
            << table_layout(t, world).describe() << " shape " << shape_to_string(shape)
            << " region " << region.to_string() << " world " << world;
        // Appended after a writer already listed: the same writers once sorted, and the one at
        // the end not repeated.
        std::vector<int> appended = {0};
        append_writers_intersecting(t, region, world, appended);
        if (appended.size() > 1) {
          EXPECT_NE(appended[1], 0) << region.to_string();
        }
        std::sort(appended.begin(), appended.end());
        appended.erase(std::unique(appended.begin(), appended.end()), appended.end());
        std::vector<int> with_zero = expected;
        with_zero.push_back(0);
        std::sort(with_zero.begin(), with_zero.end());
        with_zero.erase(std::unique(with_zero.begin(), with_zero.end()), with_zero.end());
        EXPECT_EQ(appended, with_zero)
            << table_layout(t, world).describe() << " shape " << shape_to_string(shape)
            << " region " << region.to_string() << " world " << world;
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 1000);
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

TEST(Table, LongerRecordEntriesAreReadByTheirSize) {
  // A newer minor version may append fields to entries: pieces of 32 bytes, blobs of 40.
  const Sample s = sample();
  const RankRecord& r = s.records[0];
  const std::string plain = encode_record(r);
  std::string body;
  for (std::size_t i = 0; i < r.pieces.size(); ++i)
    body += plain.substr(40 + 24 * i, 24) + "newfield";
  for (std::size_t i = 0; i < r.blobs.size(); ++i)
    body += plain.substr(40 + 24 * r.pieces.size() + 32 * i, 32) + "another!";
  std::string grown = plain.substr(0, 40) + body;
  grown[12] = 32;
  grown[14] = 40;
  put64(grown, 32, checksum_bytes(body.data(), body.size()));
  const RankRecord back = decode_record(grown, 0, s.table, s.header, "ck.h5");
  EXPECT_EQ(encode_record(back), plain);
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
}  // namespace cairn::table_testing
