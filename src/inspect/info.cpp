// SPDX-License-Identifier: Apache-2.0
// cairn info: a checkpoint's header, from its commit mark and manifest.
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "inspect/probe.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/schema.hpp"

namespace cairn::inspect {
namespace {

using detail::FileStatus;
using nlohmann::ordered_json;

ordered_json info_json(const detail::Probe& p) {
  ordered_json j;
  j["path"] = p.path;
  j["status"] = detail::status_name(p.status);
  if (p.status != FileStatus::kCommitted)
    j["problem"] = {{"key", p.problem.key}, {"box", p.problem.box}, {"message", p.problem.message}};
  j["file_bytes"] = p.file_bytes;
  if (p.has_format_attribute) j["format_attribute"] = p.format_attribute;
  if (p.mark) {
    j["committed_unix"] = p.mark->committed_unix;
    j["committed"] = detail::utc_time(p.mark->committed_unix);
  }
  if (!p.manifest) return j;
  const Manifest& m = *p.manifest;
  const detail::ManifestSummary s = detail::summarize(m, p.path);
  j["manifest_verified"] = p.status == FileStatus::kCommitted;
  j["manifest_bytes"] = p.manifest_bytes;
  j["format_version"] = detail::format_version(m);
  j["library_version"] = m.library_version;
  j["world_size"] = m.world_size;
  j["save_counter"] = m.save_counter;
  j["created_unix"] = m.created_unix;
  j["created"] = detail::utc_time(m.created_unix);
  j["nodes"] = s.nodes;
  j["tensors"] = s.tensors;
  j["dataset_tensors"] = s.dataset_tensors;
  j["packed_tensors"] = s.packed_tensors;
  j["tensor_bytes"] = s.tensor_bytes;
  j["pieces"] = s.pieces;
  j["states"] = s.states;
  j["per_rank_states"] = s.per_rank_states;
  j["state_values"] = s.state_values;
  j["state_bytes"] = s.state_bytes;
  j["packed_bytes"] = m.packed_bytes;
  if (p.part)
    j["part"] = {{"index", p.part->index}, {"count", p.part->count}, {"writers", p.part->writers}};
  return j;
}

void print_text(const detail::Probe& p, std::ostream& out) {
  detail::Table t({"", ""});
  std::string status = detail::status_name(p.status);
  if (p.status != FileStatus::kCommitted) {
    status += ": " + p.problem.message;
    if (!p.problem.key.empty()) status += " (key " + p.problem.key + ")";
  }
  t.add({"checkpoint", p.path});
  t.add({"status", status});
  if (p.manifest) {
    const Manifest& m = *p.manifest;
    const detail::ManifestSummary s = detail::summarize(m, p.path);
    const std::string unverified = p.status == FileStatus::kCommitted ? "" : "  (unverified)";
    t.add({"format", detail::format_version(m) + unverified});
    if (p.part)
      t.add({"part", detail::describe_part(*p.part) +
                         ": its writers' data and its own copy of the replicated tensors and "
                         "global state, not the whole checkpoint"});
    t.add({"library", "cairn " + m.library_version});
    t.add({"world size", detail::plural(m.world_size, "rank") + " at save"});
    t.add({"save counter", std::to_string(m.save_counter)});
    t.add({"tensors", std::to_string(s.tensors) + " (" + detail::human_bytes(s.tensor_bytes) +
                          "; " + std::to_string(s.dataset_tensors) + " in datasets, " +
                          std::to_string(s.packed_tensors) + " packed; " +
                          detail::plural(s.pieces, "piece") + ")"});
    t.add({"states", std::to_string(s.states) + " (" + std::to_string(s.per_rank_states) +
                         " per-rank, " + std::to_string(s.states - s.per_rank_states) +
                         " global; " + detail::plural(s.state_values, "value") + ", " +
                         detail::human_bytes(s.state_bytes) + ")"});
    t.add({"objects", detail::plural(s.nodes, "node")});
    t.add({"created", detail::utc_time(m.created_unix)});
  } else if (p.has_format_attribute) {
    t.add({"format", p.format_attribute + "  (" + cairn::detail::schema::kFormatAttribute +
                         " attribute; no readable manifest)"});
  }
  t.add({"committed", p.mark ? detail::utc_time(p.mark->committed_unix) : "no"});
  t.add({"file",
         detail::human_bytes(p.file_bytes) + " (" + std::to_string(p.file_bytes) + " bytes)"});
  t.print(out);
}

}  // namespace

int info(const InfoOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  const detail::Probe p = detail::probe_file(options.path);
  switch (p.status) {
    case FileStatus::kMissing:
    case FileStatus::kUnreadable:
    case FileStatus::kUnsupported:
    case FileStatus::kNotCheckpoint:
      detail::throw_probe_error(p);
    default:
      break;
  }
  if (options.json)
    out << info_json(p).dump(2) << '\n';
  else
    print_text(p, out);
  return p.status == FileStatus::kCommitted ? kExitOk : kExitFailed;
}

}  // namespace cairn::inspect
