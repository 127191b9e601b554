// SPDX-License-Identifier: Apache-2.0
// The library behind the `cairn` tool (cairn/inspect/): every verb on a sound checkpoint, on
// damaged ones, and verify's verdict being the same at every rank count.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cairn/inspect/cat.hpp"
#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "cairn/inspect/diff.hpp"
#include "cairn/inspect/directory.hpp"
#include "cairn/inspect/verify.hpp"
#include "damage.hpp"
#include "golden_model.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cairn::inspect;

const SessionOptions kSmall{.pack_threshold_bytes = 64, .piece_bytes = 32};
const std::string kEmbedding = "model/embedding/.ATTRIBUTES/VARIABLE_VALUE";
const std::string kCounts = "model/counts/.ATTRIBUTES/VARIABLE_VALUE";
const std::string kData = "data/.ATTRIBUTES/STATE";

Session& session() {
  static Session s(MPI_COMM_WORLD, kSmall);
  return s;
}
bool root() {
  return session().rank() == 0;
}
void barrier() {
  session().comm().barrier();
}

// Collective. Writes the golden model at `step` to `path`; `tweak` may change it first.
void write_model(const std::string& path, int step,
                 const std::function<void(golden::Model&)>& tweak = nullptr) {
  golden::Model m(session(), false);
  for (const golden::TensorSpec& spec : golden::tensor_specs()) {
    Variable& v = *m.variables.at(spec.path);
    golden::for_each_local(v, [&](int64_t off, int64_t g) {
      golden::encode_element(v.dtype(), spec.id, g, step, v.bytes().data() + off);
    });
  }
  m.data->value() = golden::loader_value(session().rank(), step);
  m.rng->value() = golden::rng_value(step);
  if (tweak) tweak(m);
  Checkpoint(session(), m.children()).write(path);
}

// A copy of `path` as `name`, damaged by `damage` on rank 0; collective.
std::string damaged_copy(const std::string& path, const std::string& name,
                         const std::function<void(const std::string&)>& damage) {
  const std::string copy = fs::path(path).parent_path() / name;
  if (root()) {
    fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
    damage(copy);
  }
  barrier();
  return copy;
}

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome run(const std::string& verb, const std::function<int(std::ostream&)>& fn) {
  std::ostringstream out, err;
  const int code = run_guarded(verb, err, [&] { return fn(out); });
  return {code, out.str(), err.str()};
}

// Collective: verify with every rank, and (rank 0) verify alone; the JSON verdicts must agree.
json verify_everywhere(const std::string& path, int expected_code) {
  const Outcome all = run("verify", [&](std::ostream& o) {
    return verify({.path = path, .json = true}, &session().comm(), o);
  });
  EXPECT_EQ(all.code, expected_code) << all.out << all.err;
  if (!root()) {
    EXPECT_EQ(all.out, "");  // only rank 0 prints
    return {};
  }
  const Outcome alone = run("verify", [&](std::ostream& o) {
    return verify({.path = path, .json = true, .chunk_bytes = 4096}, nullptr, o);
  });
  EXPECT_EQ(alone.code, expected_code) << alone.out << alone.err;
  json a = json::parse(all.out), b = json::parse(alone.out);
  EXPECT_EQ(a.at("ranks"), session().size());
  a.erase("ranks");
  b.erase("ranks");
  EXPECT_EQ(a, b) << "verdict on " << session().size() << " ranks:\n"
                  << a.dump(1) << "\nverdict on 1 rank:\n"
                  << b.dump(1);
  return a;
}

// The line of `text` that contains `needle` (empty if none).
std::string line_with(const std::string& text, const std::string& needle) {
  const auto pos = text.find(needle);
  if (pos == std::string::npos) return {};
  const auto start = text.rfind('\n', pos);
  const auto begin = start == std::string::npos ? 0 : start + 1;
  return text.substr(begin, text.find('\n', pos) - begin);
}

class Inspect : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::scratch_dir();
    a_ = dir_ + "/a.h5";
    write_model(a_, 1);
  }
  std::string dir_, a_;
};

TEST(InspectHelpers, ExitCodesAndMessages) {
  EXPECT_EQ(exit_code_for(Error(ErrorCode::kInvalidArgument, "x")), kExitUsage);
  EXPECT_EQ(exit_code_for(Error(ErrorCode::kCorrupt, "x")), kExitFailed);
  EXPECT_EQ(exit_code_for(Error(ErrorCode::kNotFound, "x")), kExitIo);
  EXPECT_EQ(exit_code_for(Error(ErrorCode::kVersion, "x")), kExitIo);
  EXPECT_EQ(exit_code_for(Error(ErrorCode::kIo, "x")), kExitIo);
  const Error e(ErrorCode::kCorrupt, "piece [0:2, 0:4] is bad",
                {.rank = 1, .checkpoint = "c.h5", .key = "k", .box = "[0:2, 0:4]"});
  EXPECT_EQ(bare_message(e), "piece [0:2, 0:4] is bad");
  std::ostringstream err;
  EXPECT_EQ(run_guarded("x", err, [&]() -> int { throw e; }), kExitFailed);
  EXPECT_EQ(err.str(), std::string("cairn x: ") + e.what() + "\n");
  // A VerbError carries its own exit code; under --json the error is also one JSON object.
  EXPECT_EQ(exit_code_for(VerbError(e, kExitDamaged)), kExitDamaged);
  std::ostringstream out, err2;
  EXPECT_EQ(
      run_guarded("diff", out, err2, true, [&]() -> int { throw VerbError(e, kExitDamaged); }),
      kExitDamaged);
  const json j = json::parse(out.str()).at("error");
  EXPECT_EQ(j.at("verb"), "diff");
  EXPECT_EQ(j.at("code"), "corrupt");
  EXPECT_EQ(j.at("exit_code"), kExitDamaged);
  EXPECT_EQ(j.at("message"), "piece [0:2, 0:4] is bad");
  EXPECT_EQ(j.at("path"), "c.h5");
  EXPECT_EQ(j.at("key"), "k");
  EXPECT_EQ(j.at("box"), "[0:2, 0:4]");
  EXPECT_EQ(j.at("rank"), 1);
  EXPECT_EQ(err2.str(), std::string("cairn diff: ") + e.what() + "\n");
}

TEST(InspectHelpers, ParseSlice) {
  const Shape shape{4, 10};
  EXPECT_EQ(parse_slice("", shape), Box::whole(shape));
  EXPECT_EQ(parse_slice("1:3,2:5", shape), (Box{{1, 2}, {2, 3}}));
  EXPECT_EQ(parse_slice("2", shape), (Box{{2, 0}, {1, 10}}));
  EXPECT_EQ(parse_slice(":,-3:", shape), (Box{{0, 7}, {4, 3}}));
  EXPECT_EQ(parse_slice("-1, :2", shape), (Box{{3, 0}, {1, 2}}));
  EXPECT_EQ(parse_slice("1:1", shape), (Box{{1, 0}, {0, 10}}));
  for (const char* bad : {"4", "0:5", "1:3,2:5,0", "a:b", "3:1", "::2", ",", "1:3,"}) {
    try {
      parse_slice(bad, shape);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_EQ(parse_slice("", {}), Box::whole({}));
}

TEST_F(Inspect, Info) {
  const Outcome text = run("info", [&](std::ostream& o) { return info({.path = a_}, o); });
  EXPECT_EQ(text.code, kExitOk) << text.err;
  EXPECT_NE(text.out.find("status        committed"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("world size    " + std::to_string(session().size()) + " rank"),
            std::string::npos)
      << text.out;
  const Outcome js =
      run("info", [&](std::ostream& o) { return info({.path = a_, .json = true}, o); });
  const json j = json::parse(js.out);
  EXPECT_EQ(j.at("status"), "committed");
  EXPECT_EQ(j.at("format_version"), "2.0");
  EXPECT_EQ(j.at("tensors"), 24);  // 17 variables, 6 slots, Adam's iterations
  EXPECT_EQ(j.at("states"), 2);
  EXPECT_EQ(j.at("world_size"), session().size());
  EXPECT_EQ(j.at("save_counter"), 0);  // write() does not count
  EXPECT_EQ(j.at("file_bytes"), static_cast<int64_t>(fs::file_size(a_)));
}

TEST_F(Inspect, InfoOfDamagedAndMissingFiles) {
  const std::string bare = damaged_copy(a_, "bare.h5", testing::remove_commit_mark);
  const Outcome r =
      run("info", [&](std::ostream& o) { return info({.path = bare, .json = true}, o); });
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_EQ(json::parse(r.out).at("status"), "uncommitted");
  EXPECT_EQ(json::parse(r.out).at("manifest_verified"), false);
  const Outcome missing =
      run("info", [&](std::ostream& o) { return info({.path = dir_ + "/no.h5"}, o); });
  EXPECT_EQ(missing.code, kExitIo);
  EXPECT_NE(missing.err.find("no such file"), std::string::npos) << missing.err;
  const std::string cut = damaged_copy(a_, "cut.h5", [](const std::string& p) {
    testing::truncate_file(p, static_cast<int64_t>(fs::file_size(p) / 2));
  });
  const Outcome trunc = run("info", [&](std::ostream& o) { return info({.path = cut}, o); });
  EXPECT_EQ(trunc.code, kExitIo);
  // The library's word for a file that does not open as HDF5.
  EXPECT_NE(trunc.err.find("corrupt: cannot open as HDF5"), std::string::npos) << trunc.err;
  EXPECT_NE(trunc.err.find("truncated"), std::string::npos) << trunc.err;
}

TEST_F(Inspect, Ls) {
  const Outcome js = run("ls", [&](std::ostream& o) { return ls({.path = a_, .json = true}, o); });
  ASSERT_EQ(js.code, kExitOk) << js.err;
  const json j = json::parse(js.out);
  ASSERT_EQ(j.at("tensors").size(), 24u);
  for (std::size_t i = 1; i < j.at("tensors").size(); ++i)
    EXPECT_LT(j["tensors"][i - 1]["key"], j["tensors"][i]["key"]);
  for (const json& t : j.at("tensors")) {
    if (t.at("key") != kEmbedding) continue;
    EXPECT_EQ(t.at("dtype"), "f32");
    EXPECT_EQ(t.at("shape"), json::array({6, 4}));
    EXPECT_EQ(t.at("bytes"), 96);
    EXPECT_EQ(t.at("layout"), "block(axis=0)");
    EXPECT_EQ(t.at("storage"), "dataset");
  }
  EXPECT_EQ(j.at("states").at(0).at("key"), kData);
  EXPECT_EQ(j.at("states").at(0).at("values"), session().size());
  const Outcome text = run("ls", [&](std::ostream& o) { return ls({.path = a_}, o); });
  EXPECT_NE(text.out.find("key "), std::string::npos);
  EXPECT_NE(text.out.find("24 tensors"), std::string::npos) << text.out;
}

TEST_F(Inspect, Tree) {
  const Outcome r = run("tree", [&](std::ostream& o) { return tree({.path = a_}, o); });
  ASSERT_EQ(r.code, kExitOk) << r.err;
  for (const char* needle :
       {"(root)\n", "├── model\n", "│   ├── embedding",
        "variable f32 [6, 4]  block(axis=0), dataset", "│   └── tied",
        "-> model/embedding  (shared, expanded there)", "└── owner", "-> model  (shared",
        "├── optimizer", "└── (slots)", "m of model/dense/kernel", "variable f64 [4, 3]",
        "state per_rank", "└── rng"})
    EXPECT_NE(r.out.find(needle), std::string::npos) << "no '" << needle << "' in\n" << r.out;
  // Each object is expanded once: the embedding's description appears for it and its two slots.
  std::size_t count = 0;
  for (auto pos = r.out.find("variable f32 [6, 4]"); pos != std::string::npos;
       pos = r.out.find("variable f32 [6, 4]", pos + 1))
    ++count;
  EXPECT_EQ(count, 3u) << r.out;
}

TEST(InspectNames, TreeAndLsEscapeControlCharactersInNames) {
  const std::string dir = testing::scratch_dir();
  const std::string path = dir + "/names.h5";
  {
    auto inner = std::make_shared<Module>();
    auto v = Variable::create<float>(session(), {5}, Layout::block(0));
    inner->track("new\nline", v);
    auto w = Variable::create<float>(session(), {3}, Layout::replicated());
    Checkpoint(session(), {{"we\tird", inner}, {"bell\x07", w}}).write(path);
  }
  const Outcome t = run("tree", [&](std::ostream& o) { return tree({.path = path}, o); });
  ASSERT_EQ(t.code, kExitOk) << t.err;
  EXPECT_EQ(t.out.find('\t'), std::string::npos) << t.out;
  for (const char* needle :
       {"├── we\\tird\n", "│   └── new\\nline  variable f32 [5]", "└── bell\\x07 "})
    EXPECT_NE(t.out.find(needle), std::string::npos) << "no '" << needle << "' in\n" << t.out;
  // (root), we\tird, its child, bell\x07: one line each.
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 4) << t.out;
  const Outcome l = run("ls", [&](std::ostream& o) { return ls({.path = path}, o); });
  ASSERT_EQ(l.code, kExitOk) << l.err;
  EXPECT_NE(l.out.find("we\\tird/new\\nline/.ATTRIBUTES/VARIABLE_VALUE  f32"), std::string::npos)
      << l.out;
  EXPECT_EQ(l.out.find('\t'), std::string::npos) << l.out;
  // JSON output keeps the names as they are (JSON escapes them itself).
  const Outcome js =
      run("ls", [&](std::ostream& o) { return ls({.path = path, .json = true}, o); });
  ASSERT_EQ(js.code, kExitOk) << js.err;
  EXPECT_EQ(json::parse(js.out).at("tensors").at(1).at("key"),
            "we\tird/new\nline/.ATTRIBUTES/VARIABLE_VALUE");
}

TEST_F(Inspect, Cat) {
  // model/dense/bias at step 1: (14 + 7 i) mod 41 - 20, times 1/8.
  const Outcome bias =
      run("cat", [&](std::ostream& o) { return cat({.path = a_, .key = "model/dense/bias"}, o); });
  ASSERT_EQ(bias.code, kExitOk) << bias.err;
  EXPECT_EQ(bias.out,
            "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE: f32 [3] (3 elements)\n"
            "[0:3]  -0.75  0.125      1\n");
  const Outcome slice = run("cat", [&](std::ostream& o) {
    return cat({.path = a_, .key = kEmbedding, .slice = "1:3,2:", .limit = 3}, o);
  });
  EXPECT_EQ(slice.code, kExitOk) << slice.err;
  EXPECT_NE(slice.out.find("slice [1:3, 2:4] (4 elements)"), std::string::npos) << slice.out;
  EXPECT_NE(slice.out.find("[1, 2:4]"), std::string::npos) << slice.out;
  EXPECT_NE(slice.out.find("... 1 more elements"), std::string::npos) << slice.out;
  const Outcome u64 =
      run("cat", [&](std::ostream& o) { return cat({.path = a_, .key = "model/u64"}, o); });
  EXPECT_NE(u64.out.find(std::to_string(golden::element_u64(14, 0, 1))), std::string::npos)
      << u64.out;
  const Outcome half = run("cat", [&](std::ostream& o) {
    return cat({.path = a_, .key = "model/half", .slice = "0,0:2"}, o);
  });
  EXPECT_NE(half.out.find("[0, 0:2]  -0.375     0.5\n"), std::string::npos) << half.out;
  const Outcome state =
      run("cat", [&](std::ostream& o) { return cat({.path = a_, .key = "data"}, o); });
  EXPECT_EQ(state.code, kExitOk) << state.err;
  EXPECT_NE(state.out.find("per_rank state, value of rank 0"), std::string::npos) << state.out;
  EXPECT_NE(state.out.find("|"), std::string::npos);
  const Outcome unknown =
      run("cat", [&](std::ostream& o) { return cat({.path = a_, .key = "nope"}, o); });
  EXPECT_EQ(unknown.code, kExitUsage);
  const Outcome bad = run("cat", [&](std::ostream& o) {
    return cat({.path = a_, .key = kEmbedding, .slice = "9"}, o);
  });
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_NE(bad.err.find("bad slice '9' for shape [6, 4]"), std::string::npos) << bad.err;
}

TEST_F(Inspect, Diff) {
  const std::string b = dir_ + "/b.h5", c = dir_ + "/c.h5", d = dir_ + "/d.h5";
  write_model(b, 2);
  write_model(c, 1, [](golden::Model& m) {  // one element changed by 0.5
    golden::for_each_local(*m.variables.at("model/embedding"), [&](int64_t off, int64_t g) {
      if (g == 5)
        reinterpret_cast<float*>(m.variables.at("model/embedding")->bytes().data() + off)[0] +=
            0.5f;
    });
  });
  write_model(d, 1, [&](golden::Model& m) {
    m.model->track("extra", Variable::create<int32_t>(session(), {2}));
    m.model->track("u64", std::make_shared<Module>());  // removes model/u64
  });
  const std::string flipped = damaged_copy(a_, "flipped.h5", [](const std::string& p) {
    testing::flip_byte(p, testing::tensor_element_offset(p, kCounts, 1));
  });
  if (!root()) return;
  const Outcome same = run("diff", [&](std::ostream& o) { return diff({.a = a_, .b = a_}, o); });
  EXPECT_EQ(same.code, kExitOk) << same.out << same.err;
  EXPECT_NE(same.out.find("24 identical, 0 differ"), std::string::npos) << same.out;
  const Outcome one =
      run("diff", [&](std::ostream& o) { return diff({.a = a_, .b = c, .chunk_bytes = 64}, o); });
  EXPECT_EQ(one.code, kExitFailed);
  EXPECT_NE(
      line_with(one.out, kEmbedding).find("differs    1 of 24 elements, max abs 0.5, max rel"),
      std::string::npos)
      << one.out;
  EXPECT_NE(one.out.find("23 identical, 1 differ"), std::string::npos) << one.out;
  const Outcome brief = run(
      "diff", [&](std::ostream& o) { return diff({.a = a_, .b = c, .changes_only = true}, o); });
  EXPECT_EQ(brief.out.find("identical\n"), std::string::npos) << brief.out;  // no identical rows
  EXPECT_NE(line_with(brief.out, kEmbedding).find("differs"), std::string::npos) << brief.out;
  const Outcome steps = run("diff", [&](std::ostream& o) { return diff({.a = a_, .b = b}, o); });
  EXPECT_EQ(steps.code, kExitFailed);
  EXPECT_NE(steps.out.find("differ, 0 changed dtype or shape, 0 added, 0 removed"),
            std::string::npos)
      << steps.out;
  EXPECT_NE(line_with(steps.out, kData).find("differs"), std::string::npos) << steps.out;
  const Outcome keys = run("diff", [&](std::ostream& o) { return diff({.a = a_, .b = d}, o); });
  EXPECT_NE(line_with(keys.out, "model/extra/").find("added      i32 [2]"), std::string::npos)
      << keys.out;
  EXPECT_NE(line_with(keys.out, "model/u64/").find("removed    u64 [4]"), std::string::npos)
      << keys.out;
  EXPECT_NE(keys.out.find("23 identical, 0 differ, 0 changed dtype or shape, 1 added, 1 removed"),
            std::string::npos)
      << keys.out;
  const Outcome damaged =
      run("diff", [&](std::ostream& o) { return diff({.a = a_, .b = flipped}, o); });
  EXPECT_EQ(damaged.code, kExitDamaged);  // damage is not "differs" (1)
  EXPECT_NE(damaged.err.find("checksum mismatch"), std::string::npos) << damaged.err;
  EXPECT_NE(damaged.err.find(kCounts), std::string::npos) << damaged.err;
}

TEST_F(Inspect, VerifySoundCheckpoint) {
  const json v = verify_everywhere(a_, kExitOk);
  if (!root()) return;
  EXPECT_EQ(v.at("verdict"), "ok");
  EXPECT_EQ(v.at("problems_total"), 0);
  EXPECT_GT(v.at("pieces_checked").get<int64_t>(), 24);
  EXPECT_EQ(v.at("blobs_checked"), session().size() + 1);
  EXPECT_EQ(v.at("datasets_checked"), 11);
}

TEST_F(Inspect, VerifyNamesDamagedKeysAndBoxes) {
  const std::string two = damaged_copy(a_, "two.h5", [](const std::string& p) {
    testing::flip_byte(p, testing::tensor_element_offset(p, kEmbedding, 5));
    testing::flip_byte(p, testing::tensor_element_offset(p, kCounts, 0));
    testing::flip_byte(p, testing::state_blob_offset(p, kData, 0));
  });
  const json v = verify_everywhere(two, kExitFailed);
  if (!root()) return;
  EXPECT_EQ(v.at("verdict"), "damaged");
  ASSERT_EQ(v.at("problems_total"), 3) << v.dump(1);
  // In manifest order: tensors as saved (embedding before counts), then states.
  EXPECT_EQ(v["problems"][0]["key"], kEmbedding);
  EXPECT_EQ(v["problems"][0]["box"], "[0:2, 0:4]");
  EXPECT_NE(v["problems"][0]["message"].get<std::string>().find("checksum mismatch"),
            std::string::npos);
  EXPECT_EQ(v["problems"][1]["key"], kCounts);
  EXPECT_EQ(v["problems"][2]["key"], kData);
  EXPECT_EQ(v["problems"][2]["box"], "rank 0");
  const Outcome limited = run("verify", [&](std::ostream& o) {
    return verify({.path = two, .json = true, .max_problems = 1}, nullptr, o);
  });
  EXPECT_EQ(json::parse(limited.out).at("problems").size(), 1u);
  EXPECT_EQ(json::parse(limited.out).at("problems_total"), 3);
  const Outcome text =
      run("verify", [&](std::ostream& o) { return verify({.path = two}, nullptr, o); });
  EXPECT_NE(text.out.find("verdict     DAMAGED: 3 problems"), std::string::npos) << text.out;
}

TEST_F(Inspect, VerifyDamageOfEveryKind) {
  struct Case {
    const char* name;
    std::function<void(const std::string&)> damage;
    int code;
    std::string status, needle;
  };
  const std::vector<Case> cases = {
      {"manifest.h5",
       [](const std::string& p) { testing::flip_byte(p, testing::manifest_offset(p) + 10); },
       kExitFailed, "corrupt", "manifest checksum mismatch"},
      {"table.h5",
       [](const std::string& p) { testing::flip_byte(p, testing::table_offset(p) + 20); },
       kExitFailed, "corrupt", "table checksum mismatch"},
      {"record.h5",
       [](const std::string& p) {
         testing::flip_byte(p, testing::record_offset(p, session().size() - 1) + 44);
       },
       kExitFailed, "corrupt", "record of rank " + std::to_string(session().size() - 1)},
      {"uncommitted.h5", testing::remove_commit_mark, kExitFailed, "uncommitted", "no commit mark"},
      {"truncated.h5", [](const std::string& p) { testing::truncate_file(p, 3000); }, kExitIo,
       "unreadable", "truncated"},
      {"nodata.h5",
       [](const std::string& p) { testing::unlink_dataset(p, "/tensors/" + kEmbedding); },
       kExitFailed, "committed", "dataset /tensors/" + kEmbedding + " is missing"},
      {"text.h5", [](const std::string& p) { std::ofstream(p) << "not hdf5"; }, kExitIo,
       "unreadable", "cannot open as HDF5"},
  };
  for (const Case& c : cases) {
    const std::string path = damaged_copy(a_, c.name, c.damage);
    const json v = verify_everywhere(path, c.code);
    if (!root()) continue;
    EXPECT_EQ(v.at("status"), c.status) << c.name;
    ASSERT_FALSE(v.at("problems").empty()) << c.name;
    EXPECT_NE(v["problems"][0]["message"].get<std::string>().find(c.needle), std::string::npos)
        << c.name << ": " << v.dump(1);
  }
  verify_everywhere(dir_ + "/missing.h5", kExitIo);
}

// A tensor whose pieces (4 MiB by default) are larger than the reads: verify, diff and cat stream
// it.
TEST(InspectLarge, StreamsPiecesLargerThanReads) {
  static Session big(MPI_COMM_WORLD);  // default options: 4 MiB pieces, a dataset per tensor
  const std::string dir = testing::scratch_dir();
  auto write = [&](const std::string& path, float bump) {
    auto v = Variable::create<float>(big, {768, 1024}, Layout::block(0));  // 3 MiB
    golden::for_each_local(*v, [&](int64_t off, int64_t g) {
      reinterpret_cast<float*>(v->bytes().data() + off)[0] =
          static_cast<float>(g % 1000) + (g == 500001 ? bump : 0.0f);
    });
    Checkpoint(big, {{"w", v}}).write(path);
  };
  write(dir + "/x.h5", 0);
  write(dir + "/y.h5", 0.25f);
  const std::string key = "w/.ATTRIBUTES/VARIABLE_VALUE";
  const std::string bad = damaged_copy(dir + "/x.h5", "bad.h5", [&](const std::string& p) {
    testing::flip_byte(p, testing::tensor_element_offset(p, key, 600000));
  });
  const json v = verify_everywhere(bad, kExitFailed);
  if (!root()) return;
  ASSERT_EQ(v.at("problems_total"), 1) << v.dump(1);
  EXPECT_EQ(v["problems"][0]["key"], key);
  // One piece per rank's box (3 MiB < 4 MiB): the box holding row 585.
  const Box box = Layout::block(0).boxes_for(585 * big.size() / 768, big.size(), {768, 1024})[0];
  EXPECT_EQ(v["problems"][0]["box"], box.to_string());
  const Outcome d = run("diff", [&](std::ostream& o) {
    return diff({.a = dir + "/x.h5", .b = dir + "/y.h5", .chunk_bytes = 64 << 10}, o);
  });
  EXPECT_EQ(d.code, kExitFailed) << d.err;
  EXPECT_NE(line_with(d.out, key).find("1 of 786432 elements, max abs 0.25, max rel 0.2"),
            std::string::npos)
      << d.out;
  const Outcome c = run("cat", [&](std::ostream& o) {
    return cat({.path = dir + "/y.h5", .key = "w", .slice = "488,288:291", .chunk_bytes = 4096}, o);
  });
  EXPECT_NE(c.out.find("[488, 288:291]     0  1.25     2\n"), std::string::npos) << c.out;
}

TEST_F(Inspect, DirectoryVerifyListAndLatest) {
  const std::string run_dir = dir_ + "/run";
  if (root()) fs::create_directories(run_dir);
  barrier();
  // An empty directory: no state file, no checkpoint.
  if (root()) {
    EXPECT_EQ(
        run("latest", [&](std::ostream& o) { return latest({.directory = run_dir}, o); }).code,
        kExitFailed);
    EXPECT_EQ(run("list", [&](std::ostream& o) { return list({.directory = run_dir}, o); }).code,
              kExitOk);
  }
  barrier();
  golden::Model m(session(), false);
  Checkpoint ckpt(session(), m.children());
  ckpt.save(run_dir + "/ckpt");
  const std::string second = ckpt.save(run_dir + "/ckpt");
  verify_everywhere(run_dir, kExitOk);
  if (root()) {
    const Outcome l =
        run("latest", [&](std::ostream& o) { return latest({.directory = run_dir}, o); });
    EXPECT_EQ(l.code, kExitOk);
    EXPECT_EQ(l.out, second + "\n");
    fs::copy_file(second, run_dir + "/ckpt-3.h5.tmp-123-456");
    testing::remove_commit_mark(run_dir + "/ckpt-3.h5.tmp-123-456");
    std::ofstream(run_dir + "/notes.h5") << "not hdf5";
    fs::copy_file(a_, run_dir + "/ckpt-10.h5");
    testing::remove_commit_mark(run_dir + "/ckpt-10.h5");
  }
  barrier();
  const json v = verify_everywhere(run_dir, kExitFailed);
  if (!root()) return;
  EXPECT_EQ(v.at("verdict"), "damaged");
  EXPECT_EQ(v.at("state_file").at("latest"), "ckpt-2.h5");
  EXPECT_EQ(v.at("skipped").at(0).at("name"), "ckpt-3.h5.tmp-123-456");
  ASSERT_EQ(v.at("problems").size(), 2u) << v.dump(1);
  EXPECT_EQ(v["problems"][0]["checkpoint"], "ckpt-10.h5");
  EXPECT_EQ(v["problems"][1]["checkpoint"], "notes.h5");
  const Outcome l =
      run("list", [&](std::ostream& o) { return list({.directory = run_dir, .json = true}, o); });
  EXPECT_EQ(l.code, kExitFailed);
  std::vector<std::string> got;
  const json listed = json::parse(l.out);
  for (const json& f : listed.at("files"))
    got.push_back(f.at("name").get<std::string>() + " " + f.at("status").get<std::string>() + " " +
                  f.at("state_file").get<std::string>());
  EXPECT_EQ(got,
            (std::vector<std::string>{"ckpt-1.h5 committed recorded", "ckpt-2.h5 committed latest",
                                      "ckpt-3.h5.tmp-123-456 temporary ", "ckpt-10.h5 uncommitted ",
                                      "notes.h5 unreadable "}));
  // A damaged state file is unreadable (3), never "no checkpoint" (1).
  std::ofstream(run_dir + "/" + kStateFileName) << "{ not json";
  const Outcome damaged =
      run("latest", [&](std::ostream& o) { return latest({.directory = run_dir}, o); });
  EXPECT_EQ(damaged.code, kExitIo);
  EXPECT_NE(damaged.err.find("state file is damaged"), std::string::npos) << damaged.err;
  EXPECT_EQ(run("list", [&](std::ostream& o) { return list({.directory = run_dir}, o); }).code,
            kExitFailed);
  EXPECT_EQ(
      run("latest", [&](std::ostream& o) { return latest({.directory = dir_ + "/none"}, o); }).code,
      kExitIo);
  EXPECT_EQ(run("latest", [&](std::ostream& o) { return latest({.directory = a_}, o); }).code,
            kExitUsage);
}

}  // namespace
}  // namespace cairn
