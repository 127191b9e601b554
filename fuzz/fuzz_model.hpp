// SPDX-License-Identifier: Apache-2.0
#pragma once
// The object graph of the container fuzzer's seed checkpoints (make_seeds.cpp) and of the restore
// it runs on every input (fuzz_container.cpp). Small on purpose: the seeds stay a few KB, and the
// thresholds below still send tensors down every storage path (packed, own dataset, several pieces
// per box, replicated pieces written by rotating ranks).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"

namespace cairn::fuzz {

// Tensors above 64 bytes get their own dataset, cut into pieces of at most 32 bytes.
inline const SessionOptions kSessionOptions{.pack_threshold_bytes = 64, .piece_bytes = 32};

struct Model {
  std::shared_ptr<Module> root = std::make_shared<Module>();
  std::vector<std::shared_ptr<Variable>> variables;
  std::shared_ptr<State<std::vector<int32_t>>> loader;  // per-rank opaque state
  std::shared_ptr<State<std::string>> rng;              // global opaque state
};

inline Model make_model(const Session& session) {
  Model m;
  auto dense = m.root->add("dense", std::make_shared<Module>());
  auto add = [&](Module& parent, const std::string& name, DType dtype, Shape shape, Layout layout) {
    auto v = std::make_shared<Variable>(session, dtype, std::move(shape), std::move(layout));
    parent.track(name, v);
    m.variables.push_back(v);
  };
  add(*dense, "kernel", DType::kF32, {6, 4}, Layout::block(0));    // dataset, 3 pieces per box
  add(*dense, "bias", DType::kF32, {4}, Layout::replicated());     // packed
  add(*m.root, "table", DType::kF64, {12}, Layout::replicated());  // replicated dataset
  add(*m.root, "mask", DType::kBool, {5}, Layout::block(0));       // packed
  add(*m.root, "step", DType::kI64, {}, Layout::replicated());     // packed scalar
  m.loader = std::make_shared<State<std::vector<int32_t>>>(StateScope::kPerRank);
  m.rng = std::make_shared<State<std::string>>(StateScope::kGlobal);
  m.root->track("loader", m.loader);
  m.root->track("rng", m.rng);
  return m;
}

/// Local. Deterministic values: byte i of variable k is (k * 31 + i) mod 251, bool bytes 0/1.
inline void fill_model(Model& m, int rank) {
  for (std::size_t k = 0; k < m.variables.size(); ++k) {
    Variable& v = *m.variables[k];
    auto bytes = v.bytes();
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = std::byte(v.dtype() == DType::kBool ? i % 2 : (k * 31 + i) % 251);
  }
  m.loader->value() = {rank, rank * 10, 7};
  m.rng->value() = "mt19937:5489";
}

}  // namespace cairn::fuzz
