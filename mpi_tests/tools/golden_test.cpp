// SPDX-License-Identifier: Apache-2.0
// Compatibility: the golden checkpoints of format CAIRN_GOLDEN_VERSION in
// tests/golden/format-<version>/ (written on 2 ranks by the cairn of that format, see
// tests/golden/make_golden.sh) must restore with the current library, on any number of ranks, to
// the values in expected.json. A newer major format (3.0) must be refused with ErrorCode::kVersion;
// a newer minor version of the golden file's major (1.7, 2.7) must be read.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "cairn/inspect/verify.hpp"
#include "damage.hpp"
#include "golden_model.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::session;

using golden::Model;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kGoldenDir = CAIRN_GOLDEN_DIR "/format-" CAIRN_GOLDEN_VERSION;
const std::string kGoldenMajor = std::string(CAIRN_GOLDEN_VERSION).substr(0, 1);

const json& expected() {
  static const json j = [] {
    std::ifstream in(kGoldenDir + "/expected.json");
    return json::parse(in);
  }();
  return j;
}

// The bytes the expected value `v` has as an element of `dtype`.
void encode_expected(DType dtype, const json& v, std::byte* out) {
  auto put = [out](auto x) { std::memcpy(out, &x, sizeof x); };
  const double d = v.is_number_float() || v.is_number_integer() ? v.get<double>() : 0.0;
  switch (dtype) {
    case DType::kF16:
      put(golden::float_to_half_bits(static_cast<float>(d)));
      break;
    case DType::kBF16: {
      const float f = static_cast<float>(d);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      put(static_cast<uint16_t>(b >> 16));
      break;
    }
    case DType::kF32:
      put(static_cast<float>(d));
      break;
    case DType::kF64:
      put(d);
      break;
    case DType::kI8:
      put(static_cast<int8_t>(v.get<int64_t>()));
      break;
    case DType::kI16:
      put(static_cast<int16_t>(v.get<int64_t>()));
      break;
    case DType::kI32:
      put(static_cast<int32_t>(v.get<int64_t>()));
      break;
    case DType::kI64:
      put(v.get<int64_t>());
      break;
    case DType::kU8:
      put(static_cast<uint8_t>(v.get<uint64_t>()));
      break;
    case DType::kU16:
      put(static_cast<uint16_t>(v.get<uint64_t>()));
      break;
    case DType::kU32:
      put(static_cast<uint32_t>(v.get<uint64_t>()));
      break;
    case DType::kU64:
      put(v.get<uint64_t>());
      break;
    case DType::kBool:
      put(static_cast<uint8_t>(d != 0));
      break;
  }
}

// Elements of this rank's part of `v` that differ from the expected tensor `e`.
int64_t mismatches(const Variable& v, const json& e) {
  if (dtype_name(v.dtype()) != e.at("dtype").get<std::string>() ||
      v.shape() != e.at("shape").get<Shape>())
    return shape_volume(v.shape()) + 1;
  const std::size_t esize = dtype_size(v.dtype());
  int64_t bad = 0;
  std::byte want[8];
  golden::for_each_local(v, [&](int64_t offset, int64_t global) {
    encode_expected(v.dtype(), e.at("values").at(static_cast<std::size_t>(global)), want);
    bad += std::memcmp(want, v.bytes().data() + offset, esize) != 0;
  });
  return bad;
}

const Variable* variable_for(const Model& m, const std::string& key) {
  for (const golden::TensorSpec& spec : golden::tensor_specs()) {
    const Variable& v = *m.variables.at(spec.path);
    if (key == spec.path + "/.ATTRIBUTES/VARIABLE_VALUE") return &v;
    for (const char* slot : {"m", "v"})
      if (key == spec.path + "/.OPTIMIZER_SLOT/optimizer/" + slot + "/.ATTRIBUTES/VARIABLE_VALUE")
        return m.optimizer->get_slot(v, slot).get();
  }
  return nullptr;
}

// Restores `path` into a fresh model built for this job and checks every value against `e`.
void restore_and_check(const std::string& path, const json& e) {
  Model m(session(), false);
  Checkpoint ckpt(session(), m.children());
  RestoreStatus status = ckpt.restore(path);
  status.assert_consumed();
  EXPECT_EQ(ckpt.save_counter(), e.at("save_counter").get<int64_t>());
  int64_t bad = 0, checked = 0;
  for (const json& t : e.at("tensors")) {
    const std::string key = t.at("key");
    if (key == "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE") {
      EXPECT_EQ(m.optimizer->iterations(), t.at("values").at(0).get<int64_t>());
      continue;
    }
    const Variable* v = variable_for(m, key);
    ASSERT_NE(v, nullptr) << "the golden model has no variable for " << key;
    const int64_t n = mismatches(*v, t);
    EXPECT_EQ(n, 0) << key << " in " << path;
    bad += n;
    checked += v->local_elements();
  }
  const json& loaders = e.at("states").at(0).at("values");
  const json& want = loaders.at(static_cast<std::size_t>(session().rank()) % loaders.size());
  EXPECT_EQ(m.data->value().position, want.at("position").get<int64_t>());
  EXPECT_EQ(m.data->value().shard, want.at("shard").get<std::string>());
  EXPECT_EQ(m.data->value().order, want.at("order").get<std::vector<int32_t>>());
  const json& rng = e.at("states").at(1).at("values").at(0);
  EXPECT_EQ(m.rng->value().seed, rng.at("seed").get<uint64_t>());
  EXPECT_EQ(m.rng->value().draws, rng.at("draws").get<int64_t>());
  // Every element of every tensor was checked on some rank.
  int64_t total = 0;
  for (const json& t : e.at("tensors"))
    if (t.at("key") != "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE")
      total += static_cast<int64_t>(t.at("values").size());
  int64_t replicated_extra = 0;  // replicated tensors are held whole by every rank
  for (const json& t : e.at("tensors"))
    if (t.at("layout") == "replicated" &&
        t.at("key") != "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE")
      replicated_extra += static_cast<int64_t>(t.at("values").size()) * (session().size() - 1);
  EXPECT_EQ(session().comm().allreduce_sum(checked), total + replicated_extra);
  EXPECT_EQ(session().comm().allreduce_sum(bad), 0);
}

TEST(Golden, FilesArePresentAndSmall) {
  ASSERT_EQ(expected().at("checkpoints").size(), 2u);
  for (const json& c : expected().at("checkpoints")) {
    const std::string path = kGoldenDir + "/" + c.at("file").get<std::string>();
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_LT(fs::file_size(path), 100u * 1024) << path;
  }
}

TEST(Golden, RestoresEveryValueOnThisJob) {
  for (const json& c : expected().at("checkpoints"))
    restore_and_check(kGoldenDir + "/" + c.at("file").get<std::string>(), c);
}

TEST(Golden, ReaderMatchesExpected) {
  for (const json& c : expected().at("checkpoints")) {
    const CheckpointReader reader(kGoldenDir + "/" + c.at("file").get<std::string>());
    EXPECT_EQ(reader.world_size(), c.at("world_size").get<int>());
    EXPECT_EQ(reader.save_counter(), c.at("save_counter").get<int64_t>());
    const std::vector<VariableInfo> vars = reader.list_variables();
    const json& tensors = c.at("tensors");
    ASSERT_EQ(vars.size(), tensors.size());
    // The header (the whole manifest in 1.x) names the version; `cairn ls` the storage.
    EXPECT_EQ(json::parse(reader.manifest_json()).at("format_version"), CAIRN_GOLDEN_VERSION);
    std::ostringstream listing;
    ASSERT_EQ(inspect::ls({.path = reader.path(), .json = true}, listing), inspect::kExitOk);
    const json listed = json::parse(listing.str()).at("tensors");
    ASSERT_EQ(listed.size(), tensors.size());
    for (std::size_t i = 0; i < vars.size(); ++i) {
      const json& t = tensors[i];
      EXPECT_EQ(vars[i].key, t.at("key").get<std::string>());
      EXPECT_EQ(dtype_name(vars[i].dtype), t.at("dtype").get<std::string>()) << vars[i].key;
      EXPECT_EQ(vars[i].shape, t.at("shape").get<Shape>()) << vars[i].key;
      EXPECT_EQ(vars[i].layout, t.at("layout").get<std::string>()) << vars[i].key;
      const std::vector<std::byte> bytes = reader.load_bytes(vars[i].key);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx",
                    static_cast<unsigned long long>(XXH3_64bits(bytes.data(), bytes.size())));
      EXPECT_EQ(std::string(hex), t.at("xxh3").get<std::string>()) << vars[i].key;
      EXPECT_EQ(listed[i].at("key"), t.at("key"));
      EXPECT_EQ(listed[i].at("storage"), t.at("storage")) << vars[i].key;
    }
    const json& loaders = c.at("states").at(0).at("values");
    for (std::size_t r = 0; r < loaders.size(); ++r) {
      golden::LoaderState state;
      state.load_bytes(reader.load_state("data/.ATTRIBUTES/STATE", static_cast<int>(r)));
      EXPECT_EQ(state.value().position, loaders[r].at("position").get<int64_t>());
    }
  }
}

TEST(Golden, LatestIsTheSecondSave) {
  EXPECT_EQ(latest_checkpoint(session(), kGoldenDir), kGoldenDir + "/ckpt-2.h5");
}

TEST(Golden, VerifiesWithTheTool) {
  std::ostringstream out;
  EXPECT_EQ(inspect::verify({.path = kGoldenDir, .json = true}, &session().comm(), out), 0)
      << out.str();
}

// A copy of the newest golden checkpoint whose manifest claims `version` (written by rank 0).
std::string copy_with_version(const std::string& version) {
  const std::string dir = testing::scratch_dir();
  const std::string path = dir + "/v" + version + ".h5";
  if (session().rank() == 0) {
    fs::copy_file(kGoldenDir + "/ckpt-2.h5", path);
    testing::set_format_version(path, version);
  }
  session().comm().barrier();
  return path;
}

TEST(FormatVersion, NewerMajorIsRefusedEverywhere) {
  const std::string path = copy_with_version("3.0");
  Model m(session(), false);
  Checkpoint ckpt(session(), m.children());
  std::string text;
  ErrorCode code{};
  try {
    ckpt.restore(path);
  } catch (const Error& e) {
    text = e.what();
    code = e.code();
  }
  EXPECT_EQ(code, ErrorCode::kVersion) << text;
  EXPECT_NE(text.find("checkpoint format 3.0 is newer than this cairn reads (format 2.x); upgrade "
                      "cairn to read it"),
            std::string::npos)
      << text;
  for (const std::string& other : session().comm().gather(text, 0)) EXPECT_EQ(other, text);
  try {
    CheckpointReader reader(path);
    ADD_FAILURE() << "CheckpointReader opened a format 3.0 checkpoint";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kVersion) << e.what();
  }
  std::ostringstream out, err;
  EXPECT_EQ(inspect::run_guarded("info", err, [&] { return inspect::info({.path = path}, out); }),
            inspect::kExitIo);
  EXPECT_NE(err.str().find("newer than this cairn reads"), std::string::npos) << err.str();
}

TEST(FormatVersion, NewerMinorIsRead) {
  const std::string path = copy_with_version(kGoldenMajor + ".7");
  restore_and_check(path, expected().at("checkpoints").at(1));
}

TEST(FormatVersion, MajorZeroIsCorrupt) {
  const std::string path = copy_with_version("0.9");
  try {
    CheckpointReader reader(path);
    ADD_FAILURE() << "CheckpointReader opened a format 0.9 checkpoint";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
  }
}

}  // namespace
}  // namespace cairn
