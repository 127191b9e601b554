// SPDX-License-Identifier: Apache-2.0
#pragma once
// The workloads of DESIGN.md section 5, with deterministic values that restores verify.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"

namespace cairn::bench {

struct WorkloadSpec {
  std::string name;           // W1, W2, W3, W2S
  std::vector<Shape> shapes;  // float32 tensors, all 2-D
  int64_t total_bytes = 0;    // each tensor once
};

/// Local. W1: 8 tensors of [8192, 8192] (256 MiB each); quick: [256, 4096] (4 MiB).
/// W2: `tensors` (default 20,000) tensors of [rows, 64], rows 1..256 (256 B .. 64 KiB, ~300 MiB);
/// quick: 2,000. W3: as W1. W2S (metadata scaling): `tensors` tiny tensors of [rows, 16] with
/// rows in [nranks, 4 nranks], so that every rank writes a box of every tensor.
WorkloadSpec make_spec(const std::string& name, bool quick, int64_t tensors, int nranks);

/// Live variables of a workload on one session: sharded along axis 0 where it has at least as many
/// rows as ranks, replicated otherwise.
struct Model {
  std::shared_ptr<Module> module;
  std::vector<std::shared_ptr<Variable>> variables;
  int64_t local_bytes = 0;  // what this rank holds
};

/// Local. Builds the variables (zero-filled). With `replicated`, every tensor is replicated
/// (every rank holds and restores it whole), whatever its size.
Model build_model(const Session& session, const WorkloadSpec& spec, bool replicated = false);
/// Local. Fills every local element with value(variable index, global element index).
void fill_model(Model& model);
/// Local. Zeroes every local element, touching every page.
void clear_model(Model& model);
/// Local. Number of local elements that differ from value(variable, global index).
int64_t count_mismatches(const Model& model);

}  // namespace cairn::bench
