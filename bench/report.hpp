// SPDX-License-Identifier: Apache-2.0
#pragma once
// One measurement as a JSON object (the field names scripts/bench and docs/performance.md use),
// medians over repeats, and the final human-readable table.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::bench {

/// Timings of an asynchronous save (--async): the time the caller was blocked (planning and
/// staging copy), the time until the background commit was durable, a plain memcpy of the rank's
/// bytes into a warm buffer for comparison, the staging memory kept, and the blocked time of the
/// very first asynchronous save (which allocates and touches the staging memory). Max over ranks;
/// absent fields are printed as null.
struct AsyncTimes {
  std::optional<double> blocked_s;
  std::optional<double> commit_s;
  std::optional<double> memcpy_s;
  std::optional<double> staging_mib;
  std::optional<double> first_blocked_s;
};

/// Metadata at scale (W2S, scripts/bench --scaling): what the library counted and, with
/// --scaling, rank 0's phase times from its own trace. Absent fields are printed as null.
struct MetadataMeasurement {
  int64_t written_rank0_bytes = 0;  // SaveInfo::metadata_bytes_written on rank 0
  int64_t read_max_bytes = 0;      // RestoreInfo::metadata_bytes_read, largest over restoring ranks
  int64_t read_min_bytes = 0;      // the same, smallest
  double rank0_save_peak_mib = 0;  // rank 0's VmHWM during the save
  double rank0_load_peak_mib = 0;  // and during the restore
  std::optional<double> walk_plan_s;          // save: "walk" + "plan"
  std::optional<double> assemble_manifest_s;  // save: "table" + "records and table"
  std::optional<double> read_manifest_s;      // restore: "open and read the manifest"
  std::optional<double> match_s;              // restore: "match and validate"
};

struct Measurement {
  std::string workload;
  std::string
      replicated_reads;  // the restores' SessionOptions::replicated_reads (--replicated-reads)
  int ranks = 0;         // ranks that restored
  int save_ranks = 0;    // ranks that saved
  int run = 0;           // repeat index
  int64_t bytes = 0;     // tensor bytes, each tensor once
  int64_t tensors = 0;
  double save_s = 0, load_s = 0;
  double raw_write_coll_s = 0, raw_write_indep_s = 0;
  double raw_read_coll_s = 0, raw_read_indep_s = 0;
  // Restart: allocate the variables anew, then restore into them (cold), against a raw
  // independent MPI-IO read into a freshly allocated, untouched buffer of the same bytes.
  double alloc_s = 0, restart_load_s = 0, raw_fresh_read_s = 0;
  bool cold = false;                // the page cache was dropped before every read
  bool verified = false;            // every restored element equals the saved one, on every rank
  double peak_rss_mib = 0;          // max over ranks of VmHWM during save and load
  double save_extra_mib = 0;        // max over ranks of peak minus RSS before the save
  double load_extra_mib = 0;        // same for the restore (targets already allocated)
  double save_extra_bound_mib = 0;  // 64 MiB + 5% of the rank's bytes (largest rank)
  double load_extra_bound_mib = 0;  // 64 MiB + the rank's own shard bytes (smallest rank)
  int64_t manifest_bytes = 0;
  int64_t file_bytes = 0;
  AsyncTimes async;
  bool plan_reused = false;  // the timed save reused the previous save's plan
  MetadataMeasurement meta;
  // Piece and state bytes of the timed restore, all restoring ranks together (RestoreInfo).
  int64_t load_file_bytes = 0;
  int64_t load_peer_bytes = 0;
};

/// The JSON object of one run (or of medians, with run = "median").
nlohmann::json to_json(const Measurement& m);
/// Medians over runs of one workload, field by field; ratios are medians of per-run ratios.
nlohmann::json median_json(const std::vector<nlohmann::json>& runs);
/// The table of median objects, with the min-max of the runs' ratios when given.
void print_table(std::ostream& out, const std::vector<nlohmann::json>& medians);

}  // namespace cairn::bench
