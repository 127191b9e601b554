// SPDX-License-Identifier: Apache-2.0
// The format 2.0 metadata codec on damaged input: one test per rule of docs/format.md's "Table
// consistency", of the records and of the header, each checking the error code and that the
// message names the key, node or rank.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "storage/table.hpp"
#include "table_sample.hpp"

namespace cairn::table_testing {
namespace {

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
  // Two global states at one path ("gs2" renamed): the state key is named.
  expect_table_error([](GlobalTable& g, Header&) { g.edges[17].name = "gs"; },
                     "the key appears twice", "gs/.ATTRIBUTES/STATE");
}

TEST(TableDamage, Codes) {
  expect_table_error([](GlobalTable& g, Header&) { g.tensors[0].dtype = static_cast<DType>(13); },
                     "unknown dtype code 13", kV0);
  // The same in a file of a newer minor version is a version error: not damage.
  expect_table_error(
      [](GlobalTable& g, Header& h) {
        g.tensors[0].dtype = static_cast<DType>(13);
        h.format_minor = kNewestFormatMinor + 1;
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
  // Found by fuzz_table: an end past int64 must not overflow while the message is written.
  expect_table_error(
      [](GlobalTable& g, Header&) {
        g.tensors[4].boxes[1].box = B({std::numeric_limits<int64_t>::max() - 1}, {5});
      },
      "explicit box at [9223372036854775806] of [5] lies outside shape [4]", "v4/");
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

TEST(TableDamage, StringsOfTerabytesAreRefusedBeforeTheyAreCopied) {
  // 40,000 nodes whose kinds are all made to refer to one 100 kB edge name: a table of 1.5 MB whose
  // decoded kinds would take 4 GB. The reader stops at 64 MiB.
  GlobalTable g;
  g.nodes.push_back({"root"});
  for (uint32_t i = 1; i <= 40000; ++i) {
    g.nodes.push_back({"k"});
    g.edges.push_back({0, i, i == 1 ? std::string(100000, 'L') : "n" + std::to_string(i)});
  }
  std::string bytes = encode_table(g);
  const uint64_t nodes = section_offset(bytes, 2), long_name = section_offset(bytes, 3) + 8;
  for (uint64_t i = 1; i <= 40000; ++i) {
    for (uint64_t k = 0; k < 8; ++k) bytes[nodes + 16 * i + k] = bytes[long_name + k];
  }
  EXPECT_LT(bytes.size(), 2000000u);
  expect_error([&] { decode_table(bytes, Header{}, "ck.h5"); },
               "strings the table refers to total more than 67108864", "node ");
}

}  // namespace
}  // namespace cairn::table_testing
