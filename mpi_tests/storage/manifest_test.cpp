// SPDX-License-Identifier: Apache-2.0
// The 1.x manifest codec (cairn reads format 1.x files and no longer writes them): round trip, and
// every kind of damaged or hostile input is a clear error.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "storage/manifest.hpp"

namespace cairn {
namespace {

using nlohmann::json;

Manifest sample() {
  Manifest m;
  m.format_major = kLegacyMajor;
  m.format_minor = kLegacyMinor;
  m.library_version = "0.1.0";
  m.world_size = 2;
  m.save_counter = 7;
  m.created_unix = 1700000000;
  m.packed_bytes = 24;
  m.nodes = {{"root", "", {{"w", 1}, {"s", 2}}, {}, ""},
             {"variable", "w", {}, {}, "w/.ATTRIBUTES/VARIABLE_VALUE"},
             {"state", "s", {}, {}, "s/.ATTRIBUTES/STATE"}};
  TensorRecord t{
      "w/.ATTRIBUTES/VARIABLE_VALUE",          DType::kF32, {4, 3}, "block(axis=0)", false,
      "/tensors/w/.ATTRIBUTES/VARIABLE_VALUE", {}};
  t.boxes.push_back({0,
                     Box{{0, 0}, {2, 3}},
                     {{Box{{0, 0}, {1, 3}}, 0x1234, -1}, {Box{{1, 0}, {1, 3}}, 0xfeed, -1}}});
  t.boxes.push_back({1, Box{{2, 0}, {2, 3}}, {{Box{{2, 0}, {2, 3}}, 0xabcdef0123456789ull, -1}}});
  m.tensors.push_back(t);
  m.states.push_back(
      {"s/.ATTRIBUTES/STATE", SavedScope::kPerRank, {{0, 0, 12, 1}, {1, 12, 12, 2}}});
  return m;
}

void expect_corrupt(const std::string& text, const std::string& needle,
                    ErrorCode code = ErrorCode::kCorrupt) {
  try {
    decode_manifest(text, "ck.h5");
    FAIL() << "accepted: " << text.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ck.h5"), std::string::npos) << e.what();
  }
}

std::string mutated(const std::function<void(json&)>& change) {
  json j = json::parse(encode_manifest(sample()));
  change(j);
  return j.dump();
}

TEST(Manifest, RoundTripsEveryField) {
  const Manifest m = sample();
  const Manifest back = decode_manifest(encode_manifest(m), "ck.h5");
  EXPECT_EQ(encode_manifest(back), encode_manifest(m));
  EXPECT_EQ(back.tensors[0].boxes[1].pieces[0].checksum, 0xabcdef0123456789ull);
  EXPECT_EQ(back.states[0].blobs[1].packed_offset, 12);
  EXPECT_EQ(back.nodes[0].children[1].first, "s");
}

TEST(Manifest, NewerMajorFormatIsAVersionError) {
  // The reader decodes a 2.x file's header and table, never with this decoder.
  expect_corrupt(mutated([](json& j) { j["format_version"] = "2.0"; }),
                 "checkpoint format 2.0 is not a 1.x manifest", ErrorCode::kVersion);
  expect_corrupt(mutated([](json& j) { j["format_version"] = "9.0"; }), "format 9.0",
                 ErrorCode::kVersion);
  // A newer minor version of the same major reads fine.
  EXPECT_NO_THROW(decode_manifest(mutated([](json& j) { j["format_version"] = "1.7"; }), "ck.h5"));
}

TEST(Manifest, ValuesUnknownToThisReaderAreAVersionErrorInANewerMinorFormat) {
  const std::string newer = "1." + std::to_string(kLegacyMinor + 1);
  const std::string same = "1." + std::to_string(kLegacyMinor);
  const std::vector<std::function<void(json&)>> unknowns = {
      [](json& j) { j["tensors"][0]["dtype"] = "f8e4m3"; },
      [](json& j) { j["tensors"][0]["storage"] = "chunked"; },
      [](json& j) { j["states"][0]["scope"] = "per_node"; },
  };
  for (const auto& unknown : unknowns) {
    // Written by a newer cairn: something this reader does not know yet, not damage.
    expect_corrupt(mutated([&](json& j) {
                     unknown(j);
                     j["format_version"] = newer;
                   }),
                   "written by a newer cairn", ErrorCode::kVersion);
    // In a format this reader fully knows, the same value is damage.
    expect_corrupt(mutated([&](json& j) {
                     unknown(j);
                     j["format_version"] = same;
                   }),
                   "unknown", ErrorCode::kCorrupt);
  }
}

TEST(Manifest, HostileValuesAreRejectedWithTheKey) {
  expect_corrupt("not json at all", "malformed JSON");
  expect_corrupt(mutated([](json& j) { j["format"] = "something-else"; }), "not a cairn");
  expect_corrupt(mutated([](json& j) { j.erase("nodes"); }), "malformed JSON");
  expect_corrupt(mutated([](json& j) { j["world_size"] = 0; }), "world_size");
  expect_corrupt(mutated([](json& j) { j["world_size"] = 1000000000000000000LL; }), "world_size");
  expect_corrupt(mutated([](json& j) { j["tensors"][0]["dtype"] = "f128"; }),
                 "unknown dtype 'f128'");
  expect_corrupt(mutated([](json& j) { j["tensors"][0]["shape"] = {-4, 3}; }), "invalid shape");
  expect_corrupt(mutated([](json& j) {
                   j["tensors"][0]["shape"] = {1000000000000000000LL, 1000};
                 }),
                 "w/.ATTRIBUTES/VARIABLE_VALUE");
  expect_corrupt(mutated([](json& j) {
                   j["tensors"][0]["boxes"][1]["count"] = {3, 3};
                 }),
                 "outside shape");
  expect_corrupt(mutated([](json& j) { j["tensors"][0]["boxes"][1]["rank"] = 5; }), "rank 5");
  expect_corrupt(mutated([](json& j) { j["tensors"][0]["boxes"][0]["pieces"][0]["xxh3"] = "zz"; }),
                 "bad checksum");
  expect_corrupt(mutated([](json& j) { j["nodes"][0]["children"][0][1] = 99; }),
                 "points to node 99");
  expect_corrupt(mutated([](json& j) { j["nodes"][0]["children"][0][0] = ""; }), "edge ''");
  expect_corrupt(mutated([](json& j) { j["states"][0]["blobs"][1]["bytes"] = 13; }),
                 "outside the packed data");
  expect_corrupt(mutated([](json& j) { j["states"][0]["scope"] = "sometimes"; }), "unknown scope");
  expect_corrupt(mutated([](json& j) { j["tensors"].push_back(j["tensors"][0]); }),
                 "duplicate key");
  expect_corrupt(mutated([](json& j) { j["nodes"][1]["value"] = "missing/key"; }),
                 "is not in the checkpoint");
}

TEST(Manifest, OverlapsAndGapsAreRejected) {
  // Rank 1's box moved up by one row: rows overlap and row 3 is missing, yet volumes add up.
  expect_corrupt(mutated([](json& j) {
                   j["tensors"][0]["boxes"][1]["offset"] = {1, 0};
                   j["tensors"][0]["boxes"][1]["pieces"][0]["offset"] = {1, 0};
                 }),
                 "overlap");
  // Two pieces of one box overlap while covering the same number of elements.
  expect_corrupt(mutated([](json& j) {
                   j["tensors"][0]["boxes"][0]["pieces"][1]["offset"] = {0, 0};
                 }),
                 "overlap");
  // Too few elements written.
  expect_corrupt(mutated([](json& j) { j["tensors"][0]["boxes"].erase(1); }),
                 "written boxes hold 6");
}

TEST(Manifest, EveryKindOfRecordRoundTripsAndForeignTextDecodes) {
  Manifest m = sample();
  // Packed tensors, slots, global state, and names that need escaping or are not ASCII.
  m.nodes.push_back({"optimizer", "opt", {{"w\"quoted\\", 1}}, {{1, "m", 2}}, ""});
  m.nodes.push_back({"node", "caf\xc3\xa9\t", {}, {}, ""});
  TensorRecord p{"p", DType::kBF16, {3}, "replicated", true, "", {}};
  p.boxes.push_back({1, Box{{0}, {3}}, {{Box{{0}, {3}}, 7, 12}}});
  m.tensors.push_back(p);
  m.states.push_back({"g", SavedScope::kGlobal, {{1, 18, 6, 9}}});
  m.packed_bytes = 24;
  const std::string text = encode_manifest(m);
  const Manifest back = decode_manifest(text, "ck.h5");
  EXPECT_EQ(encode_manifest(back), text);
  EXPECT_EQ(back.nodes[3].children[0].first, "w\"quoted\\");
  EXPECT_EQ(back.nodes[3].slots[0].name, "m");
  EXPECT_EQ(back.nodes[4].path, "caf\xc3\xa9\t");
  EXPECT_EQ(back.tensors[1].dtype, DType::kBF16);
  EXPECT_TRUE(back.tensors[1].packed);
  EXPECT_EQ(back.tensors[1].boxes[0].pieces[0].packed_offset, 12);
  EXPECT_EQ(back.states[1].scope, SavedScope::kGlobal);
  // Text another writer could produce (whitespace, reordered members, unknown members, integral
  // floats) decodes to the same manifest.
  json j = json::parse(text);
  j["future_member"] = {{"nested", {1, 2.5, nullptr, true}}};
  j["tensors"][0]["boxes"][0]["pieces"][0]["future"] = "x";
  EXPECT_EQ(encode_manifest(decode_manifest(j.dump(2), "ck.h5")), text);
  j["save_counter"] = 7.0;
  EXPECT_EQ(decode_manifest(j.dump(), "ck.h5").save_counter, 7);
}

TEST(Manifest, CommitMarkRoundTripsAndRejectsGarbage) {
  const CommitMark mark{0x0123456789abcdefull, 4096, 1700000000};
  const CommitMark back = decode_commit_mark(encode_commit_mark(mark), "ck.h5");
  EXPECT_EQ(back.manifest_checksum, mark.manifest_checksum);
  EXPECT_EQ(back.manifest_bytes, 4096);
  EXPECT_EQ(back.table_bytes, -1);  // a 1.x mark has no table
  const CommitMark v2{0x1111222233334444ull, 181, 1700000000, 4512, 0x0c5d3e0a9b1f2d44ull};
  const CommitMark back2 = decode_commit_mark(encode_commit_mark(v2), "ck.h5");
  EXPECT_EQ(back2.table_bytes, 4512);
  EXPECT_EQ(back2.table_checksum, v2.table_checksum);
  EXPECT_THROW(decode_commit_mark("{\"manifest_xxh3\": 5}", "ck.h5"), Error);
}

TEST(Manifest, NamesAreEscapedLikeTensorFlow) {
  EXPECT_EQ(escape_name("a.b/c"), "a..b.Sc");
  EXPECT_EQ(escape_name(".."), "....");
  EXPECT_EQ(escape_name("plain"), "plain");
}

}  // namespace
}  // namespace cairn
