// SPDX-License-Identifier: Apache-2.0
// make_golden: writes the golden checkpoints of the format this cairn writes, and the values they
// must restore to.
//
//   mpirun -n 2 make_golden OUT_DIR [--any-ranks]
//
// Writes OUT_DIR/ckpt-1.h5 and OUT_DIR/ckpt-2.h5 with Checkpoint::save (so also
// OUT_DIR/cairn-state.json), then OUT_DIR/expected.json: for each checkpoint, every tensor's key,
// dtype, shape, layout and storage as saved, its values in row-major order and the XXH3-64 of its
// row-major bytes, and every state's values. Run it through tests/golden/make_golden.sh.
#include <mpi.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "golden_model.hpp"

namespace {

using namespace cairn;
using namespace cairn::golden;
using nlohmann::ordered_json;

// Small thresholds make tiny tensors use every storage path: tensors above 64 bytes get their own
// dataset, cut into pieces of at most 32 bytes.
const SessionOptions kOptions{.pack_threshold_bytes = 64, .piece_bytes = 32};

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void fill(Variable& v, int id, int step) {
  for_each_local(v, [&](int64_t offset, int64_t global) {
    encode_element(v.dtype(), id, global, step, v.bytes().data() + offset);
  });
}

void fill_model(Model& m, int rank, int step) {
  for (const TensorSpec& spec : tensor_specs()) {
    Variable& v = *m.variables.at(spec.path);
    fill(v, spec.id, step);
    const auto slotted = std::find(slotted_paths().begin(), slotted_paths().end(), spec.path);
    if (slotted == slotted_paths().end()) continue;
    fill(*m.optimizer->get_slot(v, "m"), 100 + spec.id, step);
    fill(*m.optimizer->get_slot(v, "v"), 200 + spec.id, step);
  }
  while (m.optimizer->iterations() < step) m.optimizer->begin_step();
  m.data->value() = loader_value(rank, step);
  m.rng->value() = rng_value(step);
}

ordered_json tensor_json(const std::string& key, DType dtype, const Shape& shape,
                         const std::string& layout, bool packed, int id, int step) {
  const int64_t n = shape_volume(shape);
  const auto esize = static_cast<int64_t>(dtype_size(dtype));
  std::vector<std::byte> bytes(static_cast<std::size_t>(n * esize));
  ordered_json values = ordered_json::array();
  for (int64_t i = 0; i < n; ++i) {
    encode_element(dtype, id, i, step, bytes.data() + i * esize);
    if (dtype == DType::kI64)
      values.push_back(element_i64(id, i, step));
    else if (dtype == DType::kU64)
      values.push_back(element_u64(id, i, step));
    else
      values.push_back(element_double(dtype, id, i, step));
  }
  ordered_json j;
  j["key"] = key;
  j["dtype"] = dtype_name(dtype);
  j["shape"] = shape;
  j["layout"] = layout;
  j["storage"] = packed ? "packed" : "dataset";
  j["values"] = std::move(values);
  j["xxh3"] = hex(XXH3_64bits(bytes.data(), bytes.size()));
  return j;
}

ordered_json expected_for(const Model& m, const std::string& file, int step, int nranks) {
  ordered_json tensors = ordered_json::array();
  auto add = [&](const std::string& key, const Variable& v, int id) {
    const int64_t bytes = shape_volume(v.shape()) * static_cast<int64_t>(dtype_size(v.dtype()));
    tensors.push_back(tensor_json(key, v.dtype(), v.shape(), v.layout().describe(),
                                  bytes <= kOptions.pack_threshold_bytes, id, step));
  };
  for (const TensorSpec& spec : tensor_specs()) {
    const Variable& v = *m.variables.at(spec.path);
    add(spec.path + "/.ATTRIBUTES/VARIABLE_VALUE", v, spec.id);
    if (std::find(slotted_paths().begin(), slotted_paths().end(), spec.path) ==
        slotted_paths().end())
      continue;
    for (const auto& [slot, base_id] : {std::pair{"m", 100}, std::pair{"v", 200}})
      add(spec.path + "/.OPTIMIZER_SLOT/optimizer/" + slot + "/.ATTRIBUTES/VARIABLE_VALUE",
          *m.optimizer->get_slot(v, slot), base_id + spec.id);
  }
  // Adam's step counter: a replicated i64 scalar whose value is the step.
  ordered_json iterations = tensor_json("optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE",
                                        DType::kI64, {}, "replicated", true, 0, step);
  iterations["values"] = {step};
  const int64_t step64 = step;
  iterations["xxh3"] = hex(XXH3_64bits(&step64, sizeof step64));
  tensors.push_back(std::move(iterations));
  std::sort(tensors.begin(), tensors.end(),
            [](const ordered_json& a, const ordered_json& b) { return a["key"] < b["key"]; });
  ordered_json loaders = ordered_json::array();
  for (int r = 0; r < nranks; ++r) {
    const LoaderPosition p = loader_value(r, step);
    loaders.push_back({{"position", p.position}, {"shard", p.shard}, {"order", p.order}});
  }
  const RngState rng = rng_value(step);
  ordered_json j;
  j["file"] = file;
  j["save_counter"] = step;
  j["world_size"] = nranks;
  j["tensors"] = std::move(tensors);
  j["states"] = ordered_json::array(
      {{{"key", "data/.ATTRIBUTES/STATE"}, {"scope", "per_rank"}, {"values", std::move(loaders)}},
       {{"key", "rng/.ATTRIBUTES/STATE"},
        {"scope", "global"},
        {"values", ordered_json::array({{{"seed", rng.seed}, {"draws", rng.draws}}})}}});
  return j;
}

// The checkpoint must hold exactly the keys, dtypes, shapes and layouts expected.json promises.
void check_against_reader(const std::string& path, const ordered_json& expected) {
  const CheckpointReader reader(path);
  const std::vector<VariableInfo> vars = reader.list_variables();
  if (vars.size() != expected["tensors"].size())
    throw std::runtime_error(path + ": " + std::to_string(vars.size()) + " tensors, expected " +
                             std::to_string(expected["tensors"].size()));
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const ordered_json& e = expected["tensors"][i];
    if (vars[i].key != e["key"] || std::string(dtype_name(vars[i].dtype)) != e["dtype"] ||
        vars[i].shape != e["shape"].get<Shape>() || vars[i].layout != e["layout"])
      throw std::runtime_error(path + ": tensor " + vars[i].key + " differs from expected " +
                               e["key"].get<std::string>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  try {
    const Session session(MPI_COMM_WORLD, kOptions);
    // --any-ranks: the same model saved by another number of ranks (uneven shards, ranks owning
    // nothing), for tests of readers; the committed golden files are the 2-rank ones.
    const bool any_ranks = argc == 3 && std::string(argv[2]) == "--any-ranks";
    if (argc != 2 && !any_ranks)
      throw std::runtime_error("usage: mpirun -n 2 make_golden OUT_DIR [--any-ranks]");
    if (session.size() != 2 && !any_ranks)
      throw std::runtime_error("make_golden must run on exactly 2 ranks (or pass --any-ranks)");
    const std::string dir = argv[1];
    Model model(session, true);
    Checkpoint ckpt(session, model.children());
    ordered_json expected;
    expected["format_version"] = "";  // the written files' (below), first in the file
    expected["generator"] = "tests/golden/make_golden.sh (make_golden.cpp, golden_model.hpp)";
    expected["checkpoints"] = ordered_json::array();
    for (int step = 1; step <= 2; ++step) {
      fill_model(model, session.rank(), step);
      const std::string path = ckpt.save(dir + "/ckpt");
      const std::string file = std::filesystem::path(path).filename().string();
      expected["checkpoints"].push_back(expected_for(model, file, step, session.size()));
      if (session.rank() == 0) check_against_reader(path, expected["checkpoints"].back());
    }
    if (session.rank() == 0) {
      const std::string last =
          dir + "/" + expected["checkpoints"].back()["file"].get<std::string>();
      expected["format_version"] =
          nlohmann::json::parse(CheckpointReader(last).manifest_json()).at("format_version");
      std::ofstream(dir + "/expected.json") << expected.dump(1) << '\n';
      std::printf("make_golden: wrote %s/{ckpt-1.h5, ckpt-2.h5, cairn-state.json, expected.json}\n",
                  dir.c_str());
    }
  } catch (const std::exception& e) {
    // One rank failing alone would leave the other waiting in a collective save.
    std::fprintf(stderr, "make_golden: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return 0;
}
