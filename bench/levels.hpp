// SPDX-License-Identifier: Apache-2.0
#pragma once
// scripts/bench --levels: multi-level checkpointing (CheckpointManager with LevelOptions) on W1,
// against its floors measured in the same run. Fields and definitions: docs/performance.md.
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::bench {

struct LevelsConfig {
  int repeat = 3;
  bool quick = false;
  std::string dir;             // level 3: the shared (disk) directory
  std::string node_local_dir;  // level 1: a RAM disk; each run uses a fresh subdirectory
  double warm_factor = 1.5;    // as for the other modes (see warm_free_memory)
};

/// Collective over MPI_COMM_WORLD (at least 2 ranks, each its own node). One JSON object per run,
/// with "mode": "levels".
std::vector<nlohmann::json> run_levels(const LevelsConfig& config);

/// Medians over the runs, field by field; ratios are medians of per-run ratios.
nlohmann::json levels_median(const std::vector<nlohmann::json>& runs);

/// The table of the levels medians.
void print_levels_table(std::ostream& out, const std::vector<nlohmann::json>& medians);

}  // namespace cairn::bench
