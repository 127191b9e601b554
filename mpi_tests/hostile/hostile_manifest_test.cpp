// SPDX-License-Identifier: Apache-2.0
// Hostile format 1.x manifests: cairn no longer writes 1.x files but still reads them, so a hostile
// 1.x file must still be refused cleanly. The reference checkpoint is written (format 2.0) and
// converted into the 1.1 file cairn 0.1 wrote of the same values; the cases rewrite its manifest
// dataset and commit mark (so the damage is past the checksum) and restore it through
// Checkpoint::read on every rank count of the test: absurd shapes, unknown dtypes, overlapping and
// out-of-range boxes, names with "..", empty names, deep nesting, future format versions, absurd
// sizes. Each must be a clear cairn::Error naming the checkpoint and what is wrong, the same on
// every rank, in bounded time and memory, with the live objects untouched.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "cairn/inspect/describe.hpp"
#include "cairn/inspect/export.hpp"
#include "cairn/inspect/verify.hpp"
#include "hostile_support.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::hostile::manifest_cases {
namespace {

using nlohmann::json;

struct Case {
  std::string name;
  std::function<void(json&)> mutate;
  std::vector<ErrorCode> codes;
  std::vector<std::string> needles;
};

json& tensor(json& m, const std::string& key) {
  for (json& t : m.at("tensors"))
    if (t.at("key") == key) return t;
  throw std::runtime_error("no tensor " + key);
}

json& node(json& m, const std::string& path) {
  for (json& n : m.at("nodes"))
    if (n.at("path") == path) return n;
  throw std::runtime_error("no node " + path);
}

// Makes `t` a u8 tensor of `n` elements in one box of one piece, written by rank 0: consistent
// boxes, so that only the size is hostile.
void make_one_byte_tensor(json& t, int64_t n) {
  t["dtype"] = "u8";
  t["shape"] = {n};
  t["boxes"] = json::array(
      {{{"rank", 0},
        {"offset", {0}},
        {"count", {n}},
        {"pieces",
         json::array({{{"offset", {0}}, {"count", {n}}, {"xxh3", "0000000000000000"}}})}}});
}

// Restores the case file on every rank into a blank model and checks the error.
void run_case(const std::string& dir, const std::string& reference, const Case& c, int index,
              const std::function<void(RestoreStatus&)>& check = {}) {
  const std::string path = case_path(dir, "manifest-" + std::to_string(index));
  if (session().rank() == 0) rewrite_manifest(reference, path, c.mutate);
  session().comm().barrier();
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  std::vector<std::string> needles = c.needles;
  needles.push_back(path);
  const Outcome out = expect_clear_error(
      c.name,
      [&] {
        RestoreStatus status = ckpt.read(path);
        if (check) check(status);
      },
      c.codes, needles, check ? nullptr : &model);
  if (!check) {
    EXPECT_EQ(out.changed, 0) << c.name << ": a failed restore changed live values";
  }
}

class HostileManifest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::scratch_dir();
    reference_ = case_path(dir_, "reference");
    save_reference(reference_);
    if (session().rank() == 0) convert_to_format_1_1(reference_);
    session().comm().barrier();
  }
  void run(const std::vector<Case>& cases) {
    for (const Case& c : cases) run_case(dir_, reference_, c, next_++);
  }
  std::string dir_, reference_;
  int next_ = 0;
};

constexpr int64_t kE18 = 1000000000000000000;

// The control of every case below: the converted file is a sound 1.1 checkpoint.
TEST_F(HostileManifest, TheFormat11ReferenceIsSound) {
  EXPECT_EQ(read_manifest(reference_).at("format_version"), "1.1");
  Model model = blank_model();
  EXPECT_NO_THROW(model.checkpoint().read(reference_).assert_consumed());
  EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0);
  EXPECT_EQ(testing::global_mismatches(*model.b, 2), 0);
  const int64_t rank = session().rank();
  EXPECT_EQ(model.loader->value(), (std::vector<int64_t>{rank + 1, rank * 3 + 1, 42}));
  EXPECT_EQ(model.rng->value(), "mt19937 state 5489");
}

TEST_F(HostileManifest, AbsurdShapesAreCorrupt) {
  run({
      {"negative extent",
       [](json& m) {
         tensor(m, kWKey)["shape"] = {-16, 8};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "invalid shape"}},
      {"extents whose product overflows int64",
       [](json& m) {
         tensor(m, kWKey)["shape"] = {int64_t{1} << 40, int64_t{1} << 40};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "[1099511627776, 1099511627776]"}},
      {"10^18 elements",
       [](json& m) { tensor(m, kWKey)["shape"] = {kE18}; },
       {ErrorCode::kCorrupt},
       {kWKey, "absurdly large"}},
      {"10^18 elements, covered by one box of one piece",
       [](json& m) {
         json& t = tensor(m, kWKey);
         t["shape"] = {kE18};
         t["boxes"] = json::array({{{"rank", 0},
                                    {"offset", {0}},
                                    {"count", {kE18}},
                                    {"pieces", json::array({{{"offset", {0}},
                                                             {"count", {kE18}},
                                                             {"xxh3", "0000000000000000"}}})}}});
       },
       {ErrorCode::kCorrupt},
       {kWKey, "absurdly large"}},
      {"2^40 one-byte elements, consistent boxes (passes validation)",
       [](json& m) { make_one_byte_tensor(tensor(m, kWKey), int64_t{1} << 40); },
       {ErrorCode::kInvalidArgument},
       {kWKey, "dtype mismatch"}},
      {"33 axes",
       [](json& m) { tensor(m, kWKey)["shape"] = std::vector<int64_t>(33, 1); },
       {ErrorCode::kCorrupt},
       {kWKey, "rank above 32"}},
      {"shape is not an array",
       [](json& m) { tensor(m, kWKey)["shape"] = "16x8"; },
       {ErrorCode::kCorrupt},
       {"malformed JSON", kWKey}},
  });
}

TEST_F(HostileManifest, UnknownValuesAreCorrupt) {
  run({
      {"unknown dtype",
       [](json& m) { tensor(m, kWKey)["dtype"] = "f128"; },
       {ErrorCode::kCorrupt},
       {kWKey, "unknown dtype 'f128'"}},
      {"unknown storage",
       [](json& m) { tensor(m, kWKey)["storage"] = "cloud"; },
       {ErrorCode::kCorrupt},
       {kWKey, "unknown storage 'cloud'"}},
      {"unknown state scope",
       [](json& m) { m["states"][0]["scope"] = "per_node"; },
       {ErrorCode::kCorrupt},
       {"unknown scope 'per_node'"}},
      {"not a cairn manifest",
       [](json& m) { m["format"] = "tf-checkpoint"; },
       {ErrorCode::kCorrupt},
       {"not a cairn checkpoint"}},
      {"world_size 0",
       [](json& m) { m["world_size"] = 0; },
       {ErrorCode::kCorrupt},
       {"world_size 0 out of range"}},
      {"world_size 10^18",
       [](json& m) { m["world_size"] = kE18; },
       {ErrorCode::kCorrupt},
       {"out of range"}},
      // The reader reads the format version first, with the header decoder.
      {"manifest is a JSON array",
       [](json& m) {
         m = json::array({1, 2, 3});
       },
       {ErrorCode::kCorrupt},
       {"not a JSON object"}},
  });
}

TEST_F(HostileManifest, BadBoxesAreCorrupt) {
  run({
      {"overlapping boxes (a box repeated)",
       [](json& m) {
         json& boxes = tensor(m, kWKey)["boxes"];
         boxes.push_back(boxes[0]);
       },
       {ErrorCode::kCorrupt},
       {kWKey}},
      {"box outside the shape",
       [](json& m) {
         tensor(m, kWKey)["boxes"][0]["offset"] = {1000, 0};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "outside shape"}},
      {"box with a negative offset",
       [](json& m) {
         tensor(m, kWKey)["boxes"][0]["offset"] = {-1, 0};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "outside shape"}},
      {"box with the wrong number of axes",
       [](json& m) { tensor(m, kWKey)["boxes"][0]["offset"] = {0}; },
       {ErrorCode::kCorrupt},
       {kWKey, "a box has 1 offsets and 2 counts for a tensor of 2 axes"}},
      {"piece with a negative count",
       [](json& m) { tensor(m, kWKey)["boxes"][0]["pieces"][0]["count"][1] = -8; },
       {ErrorCode::kCorrupt},
       {kWKey, "lies outside its box"}},
      {"pieces repeated until their volumes overflow int64",
       [](json& m) {
         json& t = tensor(m, kWKey);
         const int64_t n = int64_t{1} << 55;
         t["dtype"] = "u8";
         t["shape"] = {n};
         const json piece{{"offset", {0}}, {"count", {n}}, {"xxh3", "0000000000000000"}};
         t["boxes"] = json::array(
             {{{"rank", 0}, {"offset", {0}}, {"count", {n}}, {"pieces", json::array()}}});
         for (int i = 0; i < 300; ++i) t["boxes"][0]["pieces"].push_back(piece);
       },
       {ErrorCode::kCorrupt},
       {kWKey, "hold more elements than fit in int64"}},
      {"box written by rank 99",
       [](json& m) { tensor(m, kWKey)["boxes"][0]["rank"] = 99; },
       {ErrorCode::kCorrupt},
       {kWKey, "rank 99"}},
      {"boxes missing (coverage short)",
       [](json& m) { tensor(m, kWKey)["boxes"] = json::array(); },
       {ErrorCode::kCorrupt},
       {kWKey, "written boxes hold 0 elements"}},
      {"packed state range past the end",
       [](json& m) { m["states"][0]["blobs"][0]["packed_offset"] = kE18; },
       {ErrorCode::kCorrupt},
       {"outside the packed data"}},
      {"packed_bytes 2^60 and a 2^50-byte state value",
       [](json& m) {
         m["packed_bytes"] = int64_t{1} << 60;
         for (json& s : m.at("states"))
           if (s.at("key") == kLoaderKey)
             for (json& b : s.at("blobs")) b["bytes"] = int64_t{1} << 50;
       },
       {ErrorCode::kCorrupt},
       {"packed dataset size differs from the manifest"}},
  });
}

TEST_F(HostileManifest, HostileNamesAreCorruptOrUnmatched) {
  run({
      {"empty edge name",
       [](json& m) { node(m, "")["children"][0][0] = ""; },
       {ErrorCode::kCorrupt},
       {"edge ''"}},
      {"empty tensor key",
       [](json& m) {
         tensor(m, kWKey)["key"] = "";
         node(m, "model/w")["value"] = "";
       },
       {ErrorCode::kCorrupt},
       {"empty tensor key"}},
      {"duplicate key",
       [](json& m) { m["tensors"].push_back(tensor(m, kWKey)); },
       {ErrorCode::kCorrupt},
       {kWKey, "duplicate key"}},
      {"dataset path with '..' out of /tensors",
       [](json& m) { tensor(m, kWKey)["dataset"] = "/tensors/../../../etc/passwd"; },
       {ErrorCode::kCorrupt},
       {kWKey, "dataset is missing"}},
      {"dataset path naming the manifest",
       [](json& m) { tensor(m, kWKey)["dataset"] = "/cairn/manifest"; },
       {ErrorCode::kCorrupt},
       {kWKey, "differs from the manifest"}},
      {"node value naming a missing key",
       [](json& m) { node(m, "model/w")["value"] = "../../w"; },
       {ErrorCode::kCorrupt},
       {"'../../w' is not in the checkpoint"}},
      {"edge index out of range",
       [](json& m) { node(m, "")["children"][0][1] = kE18; },
       {ErrorCode::kCorrupt},
       {"points to node"}},
      {"slot pointing outside the graph",
       [](json& m) {
         node(m, "model")["slots"] =
             json::array({{{"variable", -1}, {"name", "m"}, {"slot", kE18}}});
       },
       {ErrorCode::kCorrupt},
       {"slot 'm' points outside the object graph"}},
  });
  // An edge renamed ".." is legal in the format (edge names are the user's); nothing of the model
  // matches, which the status check reports naming what is missing.
  const Case dotdot{"edge 'model' renamed '..'",
                    [](json& m) { node(m, "")["children"][0][0] = ".."; },
                    {ErrorCode::kNotFound},
                    {"model"}};
  run_case(dir_, reference_, dotdot, next_++,
           [](RestoreStatus& s) { s.assert_existing_objects_matched(); });
}

TEST_F(HostileManifest, FutureAndMalformedVersionsAreRefused) {
  run({
      {"format 9.0",
       [](json& m) { m["format_version"] = "9.0"; },
       {ErrorCode::kVersion},
       {"checkpoint format 9.0 is newer than this cairn reads", "upgrade cairn"}},
      {"format 0.9",
       [](json& m) { m["format_version"] = "0.9"; },
       {ErrorCode::kCorrupt},
       {"bad format_version '0.9'"}},
      {"format 99999999999999999999.0",
       [](json& m) { m["format_version"] = "99999999999999999999.0"; },
       {ErrorCode::kCorrupt},
       {"bad format_version '99999999999999999999.0'"}},
      {"format 'one'",
       [](json& m) { m["format_version"] = "one"; },
       {ErrorCode::kCorrupt},
       {"bad format_version 'one'"}},
  });
}

// 10,000 levels of JSON nesting in a member the reader does not know: readers must ignore unknown
// members (docs/format.md, Versioning), so this restores; the point is bounded time and stack.
TEST_F(HostileManifest, DeepJsonNestingIsIgnoredWithinBounds) {
  const std::string path = case_path(dir_, "deep-json");
  if (session().rank() == 0) {
    std::filesystem::copy_file(reference_, path);
    std::string text = read_manifest(reference_).dump();
    text.insert(1, "\"x_future\":" + std::string(10000, '[') + std::string(10000, ']') + ",");
    write_manifest_text(path, text);
  }
  session().comm().barrier();
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NO_THROW(ckpt.read(path).assert_consumed());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30);
  EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0);
}

// An object graph 5,000 levels deep (1.x; 10,000 for 2.0) hanging off the root: legal, and
// restores; nothing of the live model is missing, and assert_consumed reports the unmatched chain
// in a bounded message.
TEST_F(HostileManifest, DeepObjectGraphIsBoundedAndReported) {
  // 5,000 levels: a 1.x manifest stores every node's full path, so it grows with depth squared (25
  // MB here, 100 MB at 10,000, which the 1.x JSON decoder took 42 s for on a loaded machine). The
  // 10,000-level chain of format 2.0, which stores parent edges, is in hostile_table_test.
  const Case deep{
      "object graph 5,000 levels deep",
      [](json& m) {
        json& nodes = m.at("nodes");
        int64_t parent = 0;
        std::string path;
        for (int level = 0; level < 5000; ++level) {
          const auto id = static_cast<int64_t>(nodes.size());
          nodes[static_cast<std::size_t>(parent)]["children"].push_back({"d", id});
          path += level ? "/d" : "d";
          nodes.push_back({{"kind", "node"}, {"path", path}, {"children", json::array()}});
          parent = id;
        }
      },
      {ErrorCode::kNotFound},
      {"d/d/d"}};
  run_case(dir_, reference_, deep, next_++, [](RestoreStatus& s) {
    s.assert_existing_objects_matched();  // the live model is all there
    s.assert_consumed();                  // the chain is not
  });
}

// 128 tensors of 2^56 bytes each (the largest size the decoder accepts, consistent boxes): each
// is valid, but their bytes add up to 2^63, past int64. The tools that sum them (export's
// safetensors offsets and its total, info, ls) report the checkpoint as corrupt, naming it and
// the tensor at which the sum overflows, instead of overflowing; verify finds the datasets that
// cannot hold them.
TEST_F(HostileManifest, TensorBytesAddingUpPastInt64AreCorruptInTheTools) {
  constexpr int kTensors = 128;
  const auto key_of = [](int i) {
    return "big/" + std::to_string(i) + "/.ATTRIBUTES/VARIABLE_VALUE";
  };
  const std::string path = case_path(dir_, "bytes-past-int64");
  if (session().rank() == 0)
    rewrite_manifest(reference_, path, [&](json& m) {
      json big = tensor(m, kWKey);
      make_one_byte_tensor(big, kMaxTensorBytes);
      for (int i = 0; i < kTensors; ++i) {
        big["key"] = key_of(i);
        m.at("tensors").push_back(big);
      }
    });
  session().comm().barrier();
  // Export and ls go by key: big/99 is the 128th of big/0 ... big/127 in string order. info goes
  // in manifest order, where big/127 is.
  const std::string out = dir_ + "/export-" + std::to_string(session().rank()) + ".safetensors";
  const std::string past = "add up to more than 2^63 bytes";
  std::ostringstream ignored;
  expect_clear_error("tensor bytes past int64: export",
                     [&] { inspect::export_checkpoint({.path = path, .output = out}, ignored); },
                     {ErrorCode::kCorrupt}, {path, key_of(99), past});
  EXPECT_FALSE(std::filesystem::exists(out));
  expect_clear_error("tensor bytes past int64: ls", [&] { inspect::ls({.path = path}, ignored); },
                     {ErrorCode::kCorrupt}, {path, key_of(99), past});
  expect_clear_error("tensor bytes past int64: info",
                     [&] { inspect::info({.path = path}, ignored); }, {ErrorCode::kCorrupt},
                     {path, key_of(127), past});
  // verify checks each dataset against its record before it sums any bytes: the 128 tensors are
  // damage there (their dataset is not 2^56 bytes), one problem each; exit 1 on every rank.
  std::ostringstream verified;
  EXPECT_EQ(inspect::verify({.path = path}, &session().comm(), verified), 1) << verified.str();
  if (session().rank() == 0) {
    EXPECT_NE(verified.str().find("DAMAGED: 128 problems"), std::string::npos) << verified.str();
  }
}

}  // namespace
}  // namespace cairn::hostile::manifest_cases
