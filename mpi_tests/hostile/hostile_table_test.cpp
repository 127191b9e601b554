// SPDX-License-Identifier: Apache-2.0
// Hostile format 2.0 headers and tables written into a real container and restored through
// Checkpoint::read on every rank count of the test. Each case decodes the reference checkpoint's
// metadata, breaks one rule of docs/format.md (or patches bytes the codec's types cannot express),
// and writes it back with a commit mark that matches, so that the damage is past the checksums and
// reaches the decoder: absurd shapes, unknown codes, layouts whose rules fail, explicit boxes that
// overlap or leave holes, replicated pieces and global blobs that do not match, graphs whose paths
// cannot be defined, a directory claiming sections far larger than the table, future versions.
// Each must be a clear cairn::Error naming the checkpoint and what is wrong (the key when there is
// one), the same on every rank, in bounded time and memory, with the live objects untouched.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "cairn/inspect/describe.hpp"
#include "cairn/inspect/export.hpp"
#include "cairn/inspect/verify.hpp"
#include "damage.hpp"
#include "hostile_support.hpp"
#include "storage/checksum.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::hostile::table_cases {
namespace {

using nlohmann::json;

const std::string kBKey = "model/b/.ATTRIBUTES/VARIABLE_VALUE";
const std::string kRngKey = "rng/.ATTRIBUTES/STATE";
constexpr int64_t kE18 = 1000000000000000000;

// A case damages the copy of the reference: through the decoded metadata, or through the file.
struct Case {
  std::string name;
  std::function<void(Metadata&)> mutate;
  std::vector<ErrorCode> codes;
  std::vector<std::string> needles;
  std::function<void(const std::string&)> patch = {};
};

std::size_t tensor_index(const Metadata& m, const std::string& key) {
  const Manifest manifest = manifest_from_table(m.header, m.table);
  for (std::size_t i = 0; i < manifest.tensors.size(); ++i)
    if (manifest.tensors[i].key == key) return i;
  throw std::runtime_error("no tensor " + key);
}

TableTensor& tensor(Metadata& m, const std::string& key) {
  return m.table.tensors[tensor_index(m, key)];
}

uint32_t node_of(Metadata& m, const std::string& path) {
  const Manifest manifest = manifest_from_table(m.header, m.table);
  for (std::size_t i = 0; i < manifest.nodes.size(); ++i)
    if (manifest.nodes[i].path == path) return static_cast<uint32_t>(i);
  throw std::runtime_error("no node " + path);
}

// Adds an edge keeping `edges` grouped by parent (after the parent's other edges).
void add_edge(GlobalTable& t, uint32_t parent, uint32_t child, const std::string& name) {
  auto at = t.edges.begin();
  while (at != t.edges.end() && at->parent <= parent) ++at;
  t.edges.insert(at, TableEdge{parent, child, name});
}

// The explicit layout that writes what w's block layout writes: the same boxes, by the same ranks.
void make_explicit(TableTensor& t, int world_size) {
  std::vector<TableBox> boxes;
  for (int r = 0; r < world_size; ++r)
    for (const Box& b : writer_boxes(t, r, world_size))
      boxes.push_back({static_cast<uint32_t>(r), b});
  t.layout = LayoutRule::kExplicit;
  t.params.clear();
  t.boxes = boxes;
}

std::string le_bytes(uint64_t v, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

// Rewrites the header's JSON text (with a commit mark that matches).
void patch_header(const std::string& path, const std::function<void(json&)>& change) {
  json h = json::parse(testing::read_byte_dataset(path, "/cairn/manifest"));
  change(h);
  testing::write_byte_dataset(path, "/cairn/manifest", h.dump());
}

void run_case(const std::string& dir, const std::string& reference, const Case& c, int index) {
  const std::string path = case_path(dir, "table-" + std::to_string(index));
  if (session().rank() == 0) {
    if (c.mutate) {
      rewrite_metadata(reference, path, c.mutate);
    } else {
      std::filesystem::copy_file(reference, path,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    if (c.patch) c.patch(path);
  }
  session().comm().barrier();
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  std::vector<std::string> needles = c.needles;
  needles.push_back(path);
  const Outcome out = expect_clear_error(
      c.name, [&] { ckpt.read(path); }, c.codes, needles, &model);
  EXPECT_EQ(out.changed, 0) << c.name << ": a failed restore changed live values";
}

class HostileTable : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::scratch_dir();
    reference_ = case_path(dir_, "reference");
    save_reference(reference_);
  }
  void run(const std::vector<Case>& cases) {
    for (const Case& c : cases) run_case(dir_, reference_, c, next_++);
  }
  // Restores a rewritten copy that must still be sound (the controls of the damaged cases).
  void expect_sound(const std::string& name, const std::function<void(Metadata&)>& mutate) {
    const std::string path = case_path(dir_, "sound-" + std::to_string(next_++));
    if (session().rank() == 0) rewrite_metadata(reference_, path, mutate);
    session().comm().barrier();
    Model model = blank_model();
    EXPECT_NO_THROW(model.checkpoint().read(path).assert_consumed()) << name;
    EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0) << name;
  }
  std::string dir_, reference_;
  int next_ = 0;
};

TEST_F(HostileTable, HostileHeadersAreCorruptOrNewer) {
  const auto header = [](std::function<void(json&)> change) {
    return [change](const std::string& p) { patch_header(p, change); };
  };
  run({
      {"not a cairn header",
       {},
       {ErrorCode::kCorrupt},
       {"not a cairn checkpoint header"},
       header([](json& h) { h["format"] = "tf-checkpoint"; })},
      {"header is a JSON array",
       {},
       {ErrorCode::kCorrupt},
       {"not a JSON object"},
       header([](json& h) {
         h = json::array({1, 2, 3});
       })},
      {"world_size 0",
       {},
       {ErrorCode::kCorrupt},
       {"world_size 0 is out of range"},
       header([](json& h) { h["world_size"] = 0; })},
      {"world_size 10^18", {}, {ErrorCode::kCorrupt}, {"out of range"}, header([](json& h) {
         h["world_size"] = kE18;
       })},
      {"piece_bytes 0",
       {},
       {ErrorCode::kCorrupt},
       {"piece_bytes 0 is out of range"},
       header([](json& h) { h["piece_bytes"] = 0; })},
      {"negative packed_bytes",
       {},
       {ErrorCode::kCorrupt},
       {"packed_bytes -1 is out of range"},
       header([](json& h) { h["packed_bytes"] = -1; })},
      {"header without piece_bytes",
       {},
       {ErrorCode::kCorrupt},
       {"piece_bytes"},
       header([](json& h) { h.erase("piece_bytes"); })},
      {"format 9.0",
       {},
       {ErrorCode::kVersion},
       {"checkpoint format 9.0 is newer than this cairn reads", "upgrade cairn"},
       header([](json& h) { h["format_version"] = "9.0"; })},
      {"format 0.9", {}, {ErrorCode::kCorrupt}, {"bad format_version '0.9'"}, header([](json& h) {
         h["format_version"] = "0.9";
       })},
      {"format 99999999999999999999.0",
       {},
       {ErrorCode::kCorrupt},
       {"format_version"},
       header([](json& h) { h["format_version"] = "99999999999999999999.0"; })},
      {"format 'one'", {}, {ErrorCode::kCorrupt}, {"bad format_version 'one'"}, header([](json& h) {
         h["format_version"] = "one";
       })},
  });
}

// The `part` member of a 2.1 header (a node's part of a node-local checkpoint): every way it can be
// wrong is corrupt, with the member named, never a crash or a part taken for a whole checkpoint.
TEST_F(HostileTable, HostilePartMembersAreCorrupt) {
  const auto part = [](std::function<void(json&, int)> change) {
    return [change](const std::string& p) {
      patch_header(p, [&](json& h) {
        h["format_version"] = "2.1";
        h["part"] = {{"index", 0}, {"count", 1}, {"writers", {0}}};
        change(h["part"], h.at("world_size").get<int>());
      });
    };
  };
  run({
      {"part in a 2.0 header",
       {},
       {ErrorCode::kCorrupt},
       {"a part of a checkpoint must be format 2.1 or newer"},
       [](const std::string& p) {
         patch_header(p, [](json& h) {
           h["part"] = {{"index", 0}, {"count", 1}, {"writers", {0}}};
         });
       }},
      {"part.count 0",
       {},
       {ErrorCode::kCorrupt},
       {"part.count 0 is out of range [1, "},
       part([](json& pt, int) { pt["count"] = 0; })},
      {"part.count beyond world_size",
       {},
       {ErrorCode::kCorrupt},
       {"part.count", "is out of range [1, "},
       part([](json& pt, int world) { pt["count"] = world + 1; })},
      {"part.count 10^18",
       {},
       {ErrorCode::kCorrupt},
       {"part.count", "is out of range"},
       part([](json& pt, int) { pt["count"] = kE18; })},
      {"part.index equal to part.count",
       {},
       {ErrorCode::kCorrupt},
       {"part.index 1 is out of range [0, 0]"},
       part([](json& pt, int) { pt["index"] = 1; })},
      {"negative part.index",
       {},
       {ErrorCode::kCorrupt},
       {"part.index -1 is out of range"},
       part([](json& pt, int) { pt["index"] = -1; })},
      // One rank cannot list two writers at all (then: "must list 1 to world_size ranks").
      {"part.writers not ascending",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must"},
       part([](json& pt, int world) {
         pt["count"] = 1;
         pt["writers"] = world >= 2 ? json{1, 0} : json{0, 0};
       })},
      {"part.writers repeated",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must"},
       part([](json& pt, int world) {
         pt["writers"] = world >= 3 ? json{0, 2, 2} : json{0, 0};
       })},
      {"part.writers beyond world_size",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must be ascending ranks below world_size, found"},
       part([](json& pt, int world) { pt["writers"] = {world}; })},
      {"negative part.writers",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must be ascending ranks below world_size, found -1"},
       part([](json& pt, int) { pt["writers"] = {-1}; })},
      {"empty part.writers",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must list 1 to world_size ranks"},
       part([](json& pt, int) { pt["writers"] = json::array(); })},
      {"part.writers not an array",
       {},
       {ErrorCode::kCorrupt},
       {"part.writers must list 1 to world_size ranks"},
       part([](json& pt, int) { pt["writers"] = "0"; })},
      {"part.writers of a fraction",
       {},
       {ErrorCode::kCorrupt},
       {"must be an integer"},
       part([](json& pt, int) { pt["writers"] = {0.5}; })},
      {"part without count",
       {},
       {ErrorCode::kCorrupt},
       {"header: malformed JSON"},
       part([](json& pt, int) { pt.erase("count"); })},
      {"part not an object",
       {},
       {ErrorCode::kCorrupt},
       {"header: malformed JSON"},
       part([](json& pt, int) { pt = 7; })},
  });
}

TEST_F(HostileTable, UnknownCodesAreCorruptAndNewerMinorVersionsAreAVersionError) {
  const auto dtype = [](uint8_t code) {
    return [code](const std::string& p) { testing::patch_table_tensor(p, kWKey, 4, code); };
  };
  run({
      {"unknown dtype code",
       {},
       {ErrorCode::kCorrupt},
       {kWKey, "unknown dtype code 200"},
       dtype(200)},
      {"unknown storage code",
       {},
       {ErrorCode::kCorrupt},
       {kWKey, "unknown storage code 7"},
       [](const std::string& p) { testing::patch_table_tensor(p, kWKey, 5, 7); }},
      {"unknown layout code",
       [](Metadata& m) { tensor(m, kWKey).layout = static_cast<LayoutRule>(9); },
       {ErrorCode::kCorrupt},
       {kWKey, "unknown layout code 9"}},
      {"unknown value kind",
       [](Metadata& m) {
         m.table.nodes[node_of(m, "model")].value_kind = static_cast<NodeValue>(5);
       },
       {ErrorCode::kCorrupt},
       {"node 1", "unknown value kind 5"}},
      {"unknown state scope code",
       {},
       {ErrorCode::kCorrupt},
       {"unknown scope code 5"},
       [](const std::string& p) {
         const testing::TableSection states = testing::table_section(p, 9);
         testing::patch_table(p, states.offset + 4, std::string(1, '\x05'));
       }},
      {"unknown dtype code in format 2.7",
       {},
       {ErrorCode::kVersion},
       {kWKey, "dtype code 200 is unknown to this reader (format 2.1)", "format 2.7",
        "upgrade cairn"},
       [](const std::string& p) {
         testing::patch_table_tensor(p, kWKey, 4, 200);
         testing::set_format_version(p, "2.7");
       }},
  });
  // A newer minor version without unknown codes reads (readers ignore what they do not know).
  const std::string newer = case_path(dir_, "format-2.7");
  if (session().rank() == 0) {
    std::filesystem::copy_file(reference_, newer);
    testing::set_format_version(newer, "2.7");
  }
  session().comm().barrier();
  Model model = blank_model();
  EXPECT_NO_THROW(model.checkpoint().read(newer).assert_consumed());
  EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0);
}

TEST_F(HostileTable, AbsurdShapesAreCorrupt) {
  run({
      {"negative extent",
       [](Metadata& m) {
         tensor(m, kWKey).shape = {-16, 8};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "negative extent"}},
      {"extents whose product overflows int64",
       [](Metadata& m) {
         tensor(m, kWKey).shape = {int64_t{1} << 40, int64_t{1} << 40};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "holds more than 2^56 bytes"}},
      {"10^18 elements",
       [](Metadata& m) {
         tensor(m, kWKey).shape = {kE18, 8};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "holds more than 2^56 bytes"}},
      {"33 axes",
       [](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         t.shape = Shape(33, 1);
       },
       {ErrorCode::kCorrupt},
       {kWKey, "33 axes"}},
      // Valid in itself (a u8 tensor of 2^40 elements); the live variable is f32: a mismatch.
      {"2^40 one-byte elements, consistent layout",
       [](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         t.dtype = DType::kU8;
         t.shape = {int64_t{1} << 40};
       },
       {ErrorCode::kInvalidArgument, ErrorCode::kCorrupt},
       {kWKey}},
      {"shape outside the dims section",
       {},
       {ErrorCode::kCorrupt},
       {kWKey, "lies outside dims"},
       [](const std::string& p) {
         // The tensor's u32 `shape` index (bytes 8-11 of its element).
         const testing::TableSection tensors = testing::table_section(p, 5);
         const testing::TableSection dims = testing::table_section(p, 6);
         testing::patch_table(p, tensors.offset + 8,
                              le_bytes(static_cast<uint64_t>(dims.count), 4));
       }},
  });
}

TEST_F(HostileTable, LayoutsWhoseRulesFailAreCorrupt) {
  const int n = session().size();
  // The control: the same boxes as an explicit layout restore.
  expect_sound("block layout rewritten as explicit boxes",
               [n](Metadata& m) { make_explicit(tensor(m, kWKey), n); });
  run({
      {"block axis outside the shape",
       [](Metadata& m) { tensor(m, kWKey).params = {5}; },
       {ErrorCode::kCorrupt},
       {kWKey, "block axis 5 lies outside shape [16, 8]"}},
      {"block layout with two parameters",
       [](Metadata& m) {
         tensor(m, kWKey).params = {0, 1};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "block layout with 2 parameters, expected 1"}},
      {"grid whose product is not the world size",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         t.layout = LayoutRule::kGrid;
         t.params = {n, 2};
       },
       {ErrorCode::kCorrupt},
       {kWKey,
        n > 1 ? "cells, but the job had " + std::to_string(n) + " ranks" : "outside [1, 1]"}},
      {"grid extent 0",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         t.layout = LayoutRule::kGrid;
         t.params = {0, n};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "grid extent 0 on axis 0"}},
      {"explicit box repeated (overlap)",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         make_explicit(t, n);
         t.boxes.push_back(t.boxes.front());
       },
       {ErrorCode::kCorrupt},
       {kWKey}},
      {"explicit box outside the shape",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         make_explicit(t, n);
         t.boxes.front().box.offset = {1000, 0};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "lies outside shape"}},
      {"explicit box with a negative offset",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         make_explicit(t, n);
         t.boxes.front().box.offset = {-1, 0};
       },
       {ErrorCode::kCorrupt},
       {kWKey, "lies outside shape"}},
      {"explicit box written by rank 99",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         make_explicit(t, n);
         t.boxes.front().rank = 99;
       },
       {ErrorCode::kCorrupt},
       {kWKey, "written by rank 99 of a " + std::to_string(n) + "-rank job"}},
      {"explicit boxes missing (coverage short)",
       [n](Metadata& m) {
         TableTensor& t = tensor(m, kWKey);
         make_explicit(t, n);
         t.boxes.pop_back();
       },
       {ErrorCode::kCorrupt},
       {kWKey, "explicit boxes cover"}},
  });
}

TEST_F(HostileTable, ReplicatedPiecesAndGlobalBlobsMustMatchTheTable) {
  const int n = session().size();
  run({
      {"replicated piece missing",
       [](Metadata& m) { m.table.replicated.clear(); },
       {ErrorCode::kCorrupt},
       {kBKey, "the replicated section ends before piece 0"}},
      {"replicated piece repeated",
       [](Metadata& m) { m.table.replicated.push_back(m.table.replicated.front()); },
       {ErrorCode::kCorrupt},
       {kBKey}},
      {"replicated piece of a block tensor",
       [](Metadata& m) {
         m.table.replicated.front().tensor = static_cast<uint32_t>(tensor_index(m, kWKey));
       },
       {ErrorCode::kCorrupt},
       {}},
      {"replicated packed piece past packed_bytes",
       [](Metadata& m) { m.table.replicated.front().packed_offset = kE18; },
       {ErrorCode::kCorrupt},
       {kBKey}},
      {"global blob missing",
       [](Metadata& m) { m.table.global_blobs.clear(); },
       {ErrorCode::kCorrupt},
       {kRngKey, "global state has no blob"}},
      {"global blob written by the wrong rank",
       [n](Metadata& m) { m.table.global_blobs.front().writer = static_cast<uint32_t>(n); },
       {ErrorCode::kCorrupt},
       {kRngKey, "global blob written by rank " + std::to_string(n)}},
      {"global blob past packed_bytes",
       [](Metadata& m) { m.table.global_blobs.front().packed_offset = kE18; },
       {ErrorCode::kCorrupt},
       {kRngKey}},
      {"packed_bytes 2^60 and a 2^50-byte global value",
       [](Metadata& m) {
         m.header.packed_bytes = int64_t{1} << 60;
         m.table.global_blobs.front().bytes = int64_t{1} << 50;
       },
       {ErrorCode::kCorrupt},
       {"packed dataset size differs from the manifest"}},
  });
}

TEST_F(HostileTable, GraphsWithoutDefinablePathsAreCorrupt) {
  run({
      {"node 0 is not the root",
       [](Metadata& m) { m.table.nodes[0].kind = "node"; },
       {ErrorCode::kCorrupt},
       {"node 0 is of kind 'node', expected 'root'"}},
      {"empty edge name",
       [](Metadata& m) { m.table.edges[0].name = ""; },
       {ErrorCode::kCorrupt},
       {"has an empty name"}},
      {"edge to a node outside the graph",
       [](Metadata& m) { m.table.edges[0].child = 1000000; },
       {ErrorCode::kCorrupt},
       {"to node 1000000 of"}},
      {"edges not grouped by parent",
       [](Metadata& m) { std::reverse(m.table.edges.begin(), m.table.edges.end()); },
       {ErrorCode::kCorrupt},
       {"edges are not grouped by increasing parent"}},
      {"node without a path",
       [](Metadata& m) {
         m.table.nodes.push_back({"node", NodeValue::kNone, 0});
       },
       {ErrorCode::kCorrupt},
       {"has no path"}},
      {"slot pointing outside the graph",
       [](Metadata& m) {
         m.table.slots.push_back({1, 4, 1000000, "m"});
       },
       {ErrorCode::kCorrupt},
       {"slot 'm'", "refers to a node outside"}},
      {"tensor of a node outside the graph",
       [](Metadata& m) { tensor(m, kWKey).node = 1000000; },
       {ErrorCode::kCorrupt},
       {"belongs to node 1000000"}},
      {"tensor whose node does not name it",
       [](Metadata& m) { m.table.nodes[node_of(m, "model/w")].value_kind = NodeValue::kNone; },
       {ErrorCode::kCorrupt},
       {}},
      {"duplicate key (a second edge 'w' under model, to a second w)",
       [](Metadata& m) {
         const uint32_t model = node_of(m, "model");
         TableTensor copy = tensor(m, kWKey);
         copy.node = static_cast<uint32_t>(m.table.nodes.size());
         m.table.nodes.push_back(
             {"variable", NodeValue::kTensor, static_cast<uint32_t>(m.table.tensors.size())});
         m.table.tensors.push_back(copy);
         add_edge(m.table, model, copy.node, "w");
       },
       {ErrorCode::kCorrupt},
       {kWKey, "the key appears twice"}},
      {"string outside the strings section",
       {},
       {ErrorCode::kCorrupt},
       {"lies outside the strings section"},
       [](const std::string& p) {
         const testing::TableSection edges = testing::table_section(p, 3);
         testing::patch_table(p, edges.offset + 8, le_bytes(0xffff0000u, 4));
       }},
  });
}

// A commit mark that matches the header and claims a table of `bytes` bytes.
std::function<void(const std::string&)> table_mark(int64_t bytes) {
  return [bytes](const std::string& p) {
    const std::string header = testing::read_byte_dataset(p, "/cairn/manifest");
    const json mark{
        {"committed_unix", 1795628571},
        {"manifest_bytes", header.size()},
        {"manifest_xxh3", checksum_to_hex(checksum_bytes(header.data(), header.size()))},
        {"table_bytes", bytes},
        {"table_xxh3", "0000000000000000"}};
    write_commit_mark(p, mark.dump());
  };
}

TEST_F(HostileTable, HostileDirectoriesAndTableBytesAreCorruptWithoutAllocating) {
  // Huge counts: the reader must compare them with the table's size, not allocate them.
  const auto section_field = [](uint32_t id, int field, uint64_t value, int width) {
    return [=](const std::string& p) {
      testing::patch_table(p, testing::table_section(p, id).entry + field, le_bytes(value, width));
    };
  };
  run({
      {"bad magic",
       {},
       {ErrorCode::kCorrupt},
       {"bad magic (not CAIRNTAB)"},
       [](const std::string& p) { testing::patch_table(p, 0, "XAIRNTAB"); }},
      {"table of major version 3",
       {},
       {ErrorCode::kCorrupt},
       {"table of major version 3 in a format 2.0 file"},
       [](const std::string& p) { testing::patch_table(p, 8, le_bytes(3, 4)); }},
      {"directory of 2^31 sections",
       {},
       {ErrorCode::kCorrupt},
       {"does not fit in"},
       [](const std::string& p) { testing::patch_table(p, 12, le_bytes(uint64_t{1} << 31, 4)); }},
      {"nodes section claims 2^40 nodes",
       {},
       {ErrorCode::kCorrupt},
       {"section nodes", "lies outside the table"},
       section_field(2, 16, uint64_t{1} << 40, 8)},
      {"dims section claims 2^61 values",
       {},
       {ErrorCode::kCorrupt},
       {"section dims", "lies outside the table"},
       section_field(6, 16, uint64_t{1} << 61, 8)},
      {"tensors section past the end",
       {},
       {ErrorCode::kCorrupt},
       {"section tensors", "lies outside the table"},
       section_field(5, 8, uint64_t{1} << 62, 8)},
      {"nodes of 8 bytes",
       {},
       {ErrorCode::kCorrupt},
       {"section nodes has elements of 8 bytes, expected at least 16"},
       section_field(2, 4, 8, 4)},
      {"section id appears twice",
       {},
       {ErrorCode::kCorrupt},
       {"section id 2 appears twice"},
       section_field(3, 0, 2, 4)},
      {"states section missing (its id unknown)",
       {},
       {ErrorCode::kCorrupt},
       {"section states is missing"},
       section_field(9, 0, 77, 4)},
      {"table bytes flipped (checksum)",
       {},
       {ErrorCode::kCorrupt},
       {"table checksum mismatch"},
       [](const std::string& p) { testing::flip_byte(p, testing::table_offset(p) + 20); }},
      // The header rewritten with the mark of a 1.x file.
      {"commit mark without a table",
       {},
       {ErrorCode::kCorrupt},
       {"has no table size"},
       [](const std::string& p) {
         write_manifest_text(p, testing::read_byte_dataset(p, "/cairn/manifest"));
       }},
      {"commit mark claims a 2 TiB table",
       {},
       {ErrorCode::kCorrupt},
       {"absurd size for /cairn/table"},
       table_mark(int64_t{1} << 41)},
      {"commit mark's table size differs from the table's",
       {},
       {ErrorCode::kCorrupt},
       {"/cairn/table size differs from the commit mark"},
       table_mark(12)},
      {"table dataset declares 16 GiB and stores nothing",
       {},
       {ErrorCode::kCorrupt},
       {"dataset stores 0 of the 17179869184 bytes", "/cairn/table"},
       [](const std::string& p) {
         replace_with_unwritten_dataset(p, "/cairn/table", int64_t{1} << 34);
         table_mark(int64_t{1} << 34)(p);
       }},
  });
}

// 10,000 levels of JSON nesting in a header member the reader does not know: readers must ignore
// unknown members (docs/format.md, Versioning), so this restores; the point is bounded time and
// stack.
TEST_F(HostileTable, DeepJsonNestingInTheHeaderIsIgnoredWithinBounds) {
  const std::string path = case_path(dir_, "deep-json");
  if (session().rank() == 0) {
    std::filesystem::copy_file(reference_, path);
    std::string text = testing::read_byte_dataset(path, "/cairn/manifest");
    text.insert(1, "\"x_future\":" + std::string(10000, '[') + std::string(10000, ']') + ",");
    testing::write_byte_dataset(path, "/cairn/manifest", text);
  }
  session().comm().barrier();
  Model model = blank_model();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NO_THROW(model.checkpoint().read(path).assert_consumed());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30);
  EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0);
}

// A chain of 10,000 nodes hanging off the root: legal, and restores; nothing of the live model is
// missing, and assert_consumed reports the unmatched chain in a bounded message.
TEST_F(HostileTable, DeepObjectGraphIsBoundedAndReported) {
  const std::string path = case_path(dir_, "deep-graph");
  if (session().rank() == 0)
    rewrite_metadata(reference_, path, [](Metadata& m) {
      auto first = static_cast<uint32_t>(m.table.nodes.size());
      add_edge(m.table, 0, first, "d");
      for (uint32_t level = 0; level < 10000; ++level) {
        m.table.nodes.push_back({"node", NodeValue::kNone, 0});
        if (level + 1 < 10000) m.table.edges.push_back({first + level, first + level + 1, "d"});
      }
    });
  session().comm().barrier();
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  expect_clear_error("object graph 10,000 levels deep",
                     [&] {
                       RestoreStatus status = ckpt.read(path);
                       status.assert_existing_objects_matched();  // the live model is all there
                       status.assert_consumed();                  // the chain is not
                     },
                     {ErrorCode::kNotFound}, {"d/d/d", path});
  EXPECT_EQ(testing::global_mismatches(*model.w, 1), 0);
}

// 128 replicated u8 tensors of 2^56 bytes each, one piece each (piece_bytes 2^56), in a table
// written from scratch: each valid, but their bytes add up to 2^63, past int64. The tools that sum
// them (export's safetensors offsets and its total, info, ls) report the checkpoint as corrupt,
// naming it and the tensor at which the sum overflows; verify finds the datasets that cannot hold
// them.
TEST_F(HostileTable, TensorBytesAddingUpPastInt64AreCorruptInTheTools) {
  constexpr int kTensors = 128;
  const auto key_of = [](int i) {
    return "big/" + std::to_string(i) + "/.ATTRIBUTES/VARIABLE_VALUE";
  };
  const std::string path = case_path(dir_, "bytes-past-int64");
  if (session().rank() == 0)
    rewrite_metadata(reference_, path, [](Metadata& m) {
      m.header.packed_bytes = 0;
      m.header.piece_bytes = kMaxTensorBytes;
      GlobalTable& t = m.table;
      t = GlobalTable{};
      t.nodes = {{"root", NodeValue::kNone, 0}, {"node", NodeValue::kNone, 0}};
      t.edges = {{0, 1, "big"}};
      for (uint32_t i = 0; i < kTensors; ++i) {
        t.nodes.push_back({"variable", NodeValue::kTensor, i});
        t.edges.push_back({1, 2 + i, std::to_string(i)});
        t.tensors.push_back(
            {2 + i, DType::kU8, false, LayoutRule::kReplicated, {kMaxTensorBytes}, {}, {}});
        t.replicated.push_back({i, 0, 0, -1});
      }
      for (std::size_t r = 0; r < m.records.size(); ++r)
        m.records[r] = RankRecord{static_cast<int>(r), {}, {}};
    });
  session().comm().barrier();
  // Export and ls go by key: big/99 is the last of big/0 ... big/127 in string order. info goes in
  // table order, where big/127 is.
  const std::string out = dir_ + "/export-" + std::to_string(session().rank()) + ".safetensors";
  const std::string past = "add up to more than 2^63 bytes";
  std::ostringstream ignored;
  expect_clear_error("tensor bytes past int64 (2.0): export",
                     [&] { inspect::export_checkpoint({.path = path, .output = out}, ignored); },
                     {ErrorCode::kCorrupt}, {path, key_of(99), past});
  EXPECT_FALSE(std::filesystem::exists(out));
  expect_clear_error("tensor bytes past int64 (2.0): ls",
                     [&] { inspect::ls({.path = path}, ignored); }, {ErrorCode::kCorrupt},
                     {path, key_of(99), past});
  expect_clear_error("tensor bytes past int64 (2.0): info",
                     [&] { inspect::info({.path = path}, ignored); }, {ErrorCode::kCorrupt},
                     {path, key_of(127), past});
  std::ostringstream verified;
  EXPECT_EQ(inspect::verify({.path = path}, &session().comm(), verified), 1) << verified.str();
  if (session().rank() == 0) {
    EXPECT_NE(verified.str().find("DAMAGED: 128 problems"), std::string::npos) << verified.str();
  }
}

}  // namespace
}  // namespace cairn::hostile::table_cases
