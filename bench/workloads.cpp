// SPDX-License-Identifier: Apache-2.0
#include "workloads.hpp"

#include <cmath>
#include <cstdio>

#include "bench_util.hpp"

namespace cairn::bench {
namespace {

uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Integers below 2^24 are exact in float32, so a restore compares bit for bit.
float value(uint64_t variable, uint64_t global_index) {
  return static_cast<float>(mix(global_index * 0x9E3779B97F4A7C15ull + variable) & 0xFFFFFF);
}

// A deterministic number in [0, 1) per tensor index.
double unit(uint64_t i) {
  return static_cast<double>(mix(i + 12345) >> 11) / 9007199254740992.0;
}

// Visits every local element of variable `v` with its global index (2-D boxes).
template <class Fn>
void for_each_element(Variable& var, Fn fn) {
  const int64_t cols = var.shape()[1];
  for (std::size_t b = 0; b < var.local_boxes().size(); ++b) {
    const Box& box = var.local_boxes()[b];
    float* data = reinterpret_cast<float*>(var.box_bytes(b).data());
    const int64_t rows = box.count[0], width = box.count[1];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c)
        fn(data[r * width + c],
           static_cast<uint64_t>((box.offset[0] + r) * cols + box.offset[1] + c));
  }
}

}  // namespace

WorkloadSpec make_spec(const std::string& name, bool quick, int64_t tensors, int nranks) {
  WorkloadSpec spec;
  spec.name = name;
  if (name == "W1" || name == "W3") {
    const Shape shape = quick ? Shape{256, 4096} : Shape{8192, 8192};
    spec.shapes.assign(8, shape);
  } else if (name == "W2") {
    const int64_t n = tensors > 0 ? tensors : (quick ? 2000 : 20000);
    // rows = 1 + 255 u^3.2 has mean ~61.7 rows of 256 B: ~300 MiB over 20,000 tensors, most of
    // them a few KiB, a sixth of them a single row (replicated on every rank count above 1).
    for (int64_t i = 0; i < n; ++i)
      spec.shapes.push_back(
          {1 + static_cast<int64_t>(255.0 * std::pow(unit(static_cast<uint64_t>(i)), 3.2)), 64});
  } else if (name == "W2S") {
    const int64_t n = tensors > 0 ? tensors : (quick ? 2000 : 20000);
    for (int64_t i = 0; i < n; ++i)
      spec.shapes.push_back(
          {nranks + static_cast<int64_t>(3.0 * nranks * unit(static_cast<uint64_t>(i))), 16});
  } else {
    throw Error(ErrorCode::kInvalidArgument, "unknown workload '" + name + "'");
  }
  for (const Shape& s : spec.shapes) spec.total_bytes += s[0] * s[1] * 4;
  return spec;
}

Model build_model(const Session& session, const WorkloadSpec& spec, bool replicated) {
  Model model;
  model.module = std::make_shared<Module>();
  model.variables.reserve(spec.shapes.size());
  const int width = spec.shapes.size() >= 10000 ? 5 : 4;
  for (std::size_t i = 0; i < spec.shapes.size(); ++i) {
    const Shape& shape = spec.shapes[i];
    const Layout layout =
        !replicated && shape[0] >= session.size() ? Layout::block(0) : Layout::replicated();
    auto var = std::make_shared<Variable>(session, DType::kF32, shape, layout);
    model.local_bytes += static_cast<int64_t>(var->bytes().size());
    char name[32];
    std::snprintf(name, sizeof name, "t%0*zu", width, i);
    model.module->track(name, var);
    model.variables.push_back(std::move(var));
  }
  return model;
}

void fill_model(Model& model) {
  for (std::size_t v = 0; v < model.variables.size(); ++v)
    for_each_element(*model.variables[v], [v](float& x, uint64_t g) { x = value(v, g); });
}

void clear_model(Model& model) {
  for (auto& var : model.variables) prewarm(var->bytes().data(), var->bytes().size());
}

int64_t count_mismatches(const Model& model) {
  int64_t bad = 0;
  for (std::size_t v = 0; v < model.variables.size(); ++v) {
    int64_t local = 0;
    for_each_element(*model.variables[v], [v, &local](float& x, uint64_t g) {
      if (x != value(v, g)) {
#pragma omp atomic
        ++local;
      }
    });
    bad += local;
  }
  return bad;
}

}  // namespace cairn::bench
