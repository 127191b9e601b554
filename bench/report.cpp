// SPDX-License-Identifier: Apache-2.0
#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

#include "bench_util.hpp"
#include "levels.hpp"

namespace cairn::bench {
namespace {

using nlohmann::json;

constexpr double kGB = 1e9;

json optional_number(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

double gbps(int64_t bytes, double seconds) {
  return seconds > 0 ? bytes / seconds / kGB : 0;
}

// Fields whose median is reported (everything numeric that varies between runs).
const char* const kNumeric[] = {"save_s",
                                "save_gbps",
                                "load_s",
                                "load_gbps",
                                "raw_write_gbps",
                                "raw_read_gbps",
                                "save_ratio",
                                "load_ratio",
                                "peak_rss_mib",
                                "save_extra_mib",
                                "load_extra_mib",
                                "raw_write_coll_gbps",
                                "raw_write_indep_gbps",
                                "raw_read_coll_gbps",
                                "raw_read_indep_gbps",
                                "manifest_bytes",
                                "file_bytes",
                                "async_blocked_s",
                                "async_commit_s",
                                "memcpy_s",
                                "async_staging_mib",
                                "async_first_blocked_s",
                                "async_blocked_ratio",
                                "async_commit_ratio",
                                "alloc_s",
                                "restart_s",
                                "raw_fresh_read_s",
                                "restart_ratio",
                                "metadata_written_rank0_bytes",
                                "metadata_read_max_bytes",
                                "metadata_read_min_bytes",
                                "rank0_peak_rss_mib",
                                "rank0_walk_plan_s",
                                "rank0_manifest_s",
                                "rank0_read_manifest_s",
                                "rank0_match_s"};

std::string cell(const json& j, const char* field, const char* format) {
  if (!j.contains(field) || !j[field].is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, j[field].get<double>());
  return buf;
}

// This row's `field` over the previous row's, when both are the same workload and tensor count on
// different rank counts (the growth from one rank count to the next).
std::string growth(const json& m, const json* prev, const char* field) {
  if (!prev || prev->value("workload", "") != m.value("workload", "") ||
      prev->value("tensors", int64_t{0}) != m.value("tensors", int64_t{0}) ||
      prev->value("save_ranks", 0) == m.value("save_ranks", 0))
    return "";
  const double a =
      prev->contains(field) && (*prev)[field].is_number() ? (*prev)[field].get<double>() : 0;
  const double b = m.contains(field) && m[field].is_number() ? m[field].get<double>() : 0;
  if (a <= 0 || b <= 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "x%.1f", b / a);
  return buf;
}

void print_metadata_table(std::ostream& out, const std::vector<json>& medians) {
  char line[400];
  out << "\nMetadata (medians; MB = 1e6 bytes, counted by the library: written by rank 0,\n"
         "taken in per rank (largest rank); xN = over the row before, same tensors; rank 0's\n"
         "peak RSS in MiB and, with --scaling, its traced phases in s: walk and plan, assemble\n"
         "the manifest, read the manifest)\n";
  std::snprintf(line, sizeof line,
                "%-5s %-6s %7s | %9s %9s %9s | %7s %5s %7s %5s | %7s %9s %9s %9s\n", "work",
                "ranks", "tensors", "manifest", "written", "read/rank", "save s", "", "load s", "",
                "RSS", "walk+plan", "assemble", "read man.");
  out << line;
  const json* prev = nullptr;
  auto mb = [](const json& m, const char* field) {
    if (!m.contains(field) || !m[field].is_number()) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", m[field].get<double>() / 1e6);
    return std::string(buf);
  };
  for (const json& m : medians) {
    const std::string ranks =
        std::to_string(m.value("save_ranks", 0)) + ">" + std::to_string(m.value("ranks", 0));
    std::snprintf(
        line, sizeof line, "%-5s %-6s %7lld | %9s %9s %9s | %7s %5s %7s %5s | %7s %9s %9s %9s\n",
        m.value("workload", "?").c_str(), ranks.c_str(),
        static_cast<long long>(m.value("tensors", int64_t{0})), mb(m, "manifest_bytes").c_str(),
        mb(m, "metadata_written_rank0_bytes").c_str(), mb(m, "metadata_read_max_bytes").c_str(),
        cell(m, "save_s", "%.3f").c_str(), growth(m, prev, "save_s").c_str(),
        cell(m, "load_s", "%.3f").c_str(), growth(m, prev, "load_s").c_str(),
        cell(m, "rank0_peak_rss_mib", "%.0f").c_str(), cell(m, "rank0_walk_plan_s", "%.3f").c_str(),
        cell(m, "rank0_manifest_s", "%.3f").c_str(),
        cell(m, "rank0_read_manifest_s", "%.3f").c_str());
    out << line;
    prev = &m;
  }
}

}  // namespace

json to_json(const Measurement& m) {
  const double raw_write_s = std::min(m.raw_write_coll_s, m.raw_write_indep_s);
  const double raw_read_s = std::min(m.raw_read_coll_s, m.raw_read_indep_s);
  json j;
  j["workload"] = m.workload;
  j["replicated_reads"] = m.replicated_reads;
  j["ranks"] = m.ranks;
  j["save_ranks"] = m.save_ranks;
  j["run"] = m.run;
  j["bytes"] = m.bytes;
  j["tensors"] = m.tensors;
  j["save_s"] = m.save_s;
  j["save_gbps"] = gbps(m.bytes, m.save_s);
  j["load_s"] = m.load_s;
  j["load_gbps"] = gbps(m.bytes, m.load_s);
  j["raw_write_gbps"] = gbps(m.bytes, raw_write_s);
  j["raw_read_gbps"] = gbps(m.bytes, raw_read_s);
  j["save_ratio"] = m.save_s > 0 ? raw_write_s / m.save_s : 0;
  j["load_ratio"] = m.load_s > 0 ? raw_read_s / m.load_s : 0;
  j["peak_rss_mib"] = m.peak_rss_mib;
  j["save_extra_mib"] = m.save_extra_mib;
  j["load_extra_mib"] = m.load_extra_mib;
  j["save_extra_bound_mib"] = m.save_extra_bound_mib;
  j["load_extra_bound_mib"] = m.load_extra_bound_mib;
  j["raw_write_coll_gbps"] = gbps(m.bytes, m.raw_write_coll_s);
  j["raw_write_indep_gbps"] = gbps(m.bytes, m.raw_write_indep_s);
  j["raw_read_coll_gbps"] = gbps(m.bytes, m.raw_read_coll_s);
  j["raw_read_indep_gbps"] = gbps(m.bytes, m.raw_read_indep_s);
  j["alloc_s"] = m.alloc_s;
  j["restart_s"] = m.alloc_s + m.restart_load_s;
  j["raw_fresh_read_s"] = m.raw_fresh_read_s;
  j["restart_ratio"] =
      m.alloc_s + m.restart_load_s > 0 ? m.raw_fresh_read_s / (m.alloc_s + m.restart_load_s) : 0;
  j["cold"] = m.cold;
  j["verified"] = m.verified;
  j["manifest_bytes"] = m.manifest_bytes;
  j["load_file_bytes"] = m.load_file_bytes;
  j["load_peer_bytes"] = m.load_peer_bytes;
  j["file_bytes"] = m.file_bytes;
  // Asynchronous save (--async; see measure_async_save in main.cpp). The ratios are the issue's
  // targets: blocked time over a plain memcpy, time to commit over the synchronous save.
  j["async_blocked_s"] = optional_number(m.async.blocked_s);
  j["async_commit_s"] = optional_number(m.async.commit_s);
  j["memcpy_s"] = optional_number(m.async.memcpy_s);
  j["async_staging_mib"] = optional_number(m.async.staging_mib);
  j["async_first_blocked_s"] = optional_number(m.async.first_blocked_s);
  const bool timed =
      m.async.blocked_s && m.async.memcpy_s && m.async.commit_s && *m.async.memcpy_s > 0;
  j["async_blocked_ratio"] = timed ? json(*m.async.blocked_s / *m.async.memcpy_s) : json(nullptr);
  j["async_commit_ratio"] =
      timed && m.save_s > 0 ? json(*m.async.commit_s / m.save_s) : json(nullptr);
  // Metadata: counted by the library (SaveInfo / RestoreInfo), phases from its trace (--scaling).
  j["plan_reused"] = m.plan_reused;
  j["metadata_written_rank0_bytes"] = m.meta.written_rank0_bytes;
  j["metadata_read_max_bytes"] = m.meta.read_max_bytes;
  j["metadata_read_min_bytes"] = m.meta.read_min_bytes;
  j["rank0_peak_rss_mib"] = std::max(m.meta.rank0_save_peak_mib, m.meta.rank0_load_peak_mib);
  j["rank0_walk_plan_s"] = optional_number(m.meta.walk_plan_s);
  j["rank0_manifest_s"] = optional_number(m.meta.assemble_manifest_s);
  j["rank0_read_manifest_s"] = optional_number(m.meta.read_manifest_s);
  j["rank0_match_s"] = optional_number(m.meta.match_s);
  return j;
}

json median_json(const std::vector<json>& runs) {
  json out = runs.front();
  out["run"] = "median";
  out["runs"] = runs.size();
  bool verified = true, cold = true;
  for (const json& r : runs) {
    verified = verified && r.value("verified", false);
    cold = cold && r.value("cold", false);
  }
  out["verified"] = verified;
  out["cold"] = cold;
  for (const char* field : kNumeric) {
    std::vector<double> values;
    for (const json& r : runs)
      if (r.contains(field) && r[field].is_number()) values.push_back(r[field].get<double>());
    if (values.empty()) continue;
    out[field] = median(values);
  }
  for (const char* field : {"save_ratio", "load_ratio", "save_gbps", "load_gbps",
                            "async_blocked_ratio", "async_commit_ratio", "restart_ratio"}) {
    double lo = 1e300, hi = -1e300;
    for (const json& r : runs) {
      if (!r.contains(field) || !r[field].is_number()) continue;
      lo = std::min(lo, r[field].get<double>());
      hi = std::max(hi, r[field].get<double>());
    }
    if (lo > hi) continue;
    out[std::string(field) + "_min"] = lo;
    out[std::string(field) + "_max"] = hi;
  }
  return out;
}

void print_table(std::ostream& out, const std::vector<json>& all) {
  std::vector<json> medians, levels;
  for (const json& m : all) (m.value("mode", "") == "levels" ? levels : medians).push_back(m);
  if (!levels.empty()) print_levels_table(out, levels);
  if (medians.empty()) return;
  char line[400];
  std::snprintf(line, sizeof line,
                "%-5s %-6s %8s | %7s %7s %7s %-17s | %7s %7s %7s %-17s | %7s %7s %7s %s\n", "work",
                "ranks", "MiB", "save s", "GB/s", "raw", "ratio (min-max)", "load s", "GB/s", "raw",
                "ratio (min-max)", "RSS", "+save", "+load", "check");
  out << "\nMedians (GB = 1e9 bytes; raw = faster of MPI-IO collective and independent, same run;\n"
         "save = call to durable commit; load = cold cache unless marked warm; RSS in MiB: peak,\n"
         "and extra over the RSS before the save / restore, max over ranks)\n"
      << line;
  for (const json& m : medians) {
    const std::string ranks =
        std::to_string(m.value("save_ranks", 0)) + ">" + std::to_string(m.value("ranks", 0));
    const std::string save_ratio = cell(m, "save_ratio", "%.2f") + " (" +
                                   cell(m, "save_ratio_min", "%.2f") + "-" +
                                   cell(m, "save_ratio_max", "%.2f") + ")";
    const std::string load_ratio = cell(m, "load_ratio", "%.2f") + " (" +
                                   cell(m, "load_ratio_min", "%.2f") + "-" +
                                   cell(m, "load_ratio_max", "%.2f") + ")";
    std::string check = m.value("verified", false) ? "verified" : "NOT VERIFIED";
    if (!m.value("cold", false)) check += ", warm";
    if (m.value("replicated_reads", "") == "once-per-node") check += ", once per node";
    if (m.value("save_extra_mib", 0.0) > m.value("save_extra_bound_mib", 0.0))
      check += ", save mem>bound";
    if (m.value("load_extra_mib", 0.0) > m.value("load_extra_bound_mib", 0.0))
      check += ", load mem>bound";
    std::snprintf(line, sizeof line,
                  "%-5s %-6s %8.0f | %7s %7s %7s %-17s | %7s %7s %7s %-17s | %7s %7s %7s %s\n",
                  m.value("workload", "?").c_str(), ranks.c_str(),
                  m.value("bytes", int64_t{0}) / 1048576.0, cell(m, "save_s", "%.3f").c_str(),
                  cell(m, "save_gbps", "%.2f").c_str(), cell(m, "raw_write_gbps", "%.2f").c_str(),
                  save_ratio.c_str(), cell(m, "load_s", "%.3f").c_str(),
                  cell(m, "load_gbps", "%.2f").c_str(), cell(m, "raw_read_gbps", "%.2f").c_str(),
                  load_ratio.c_str(), cell(m, "peak_rss_mib", "%.0f").c_str(),
                  cell(m, "save_extra_mib", "%.0f").c_str(),
                  cell(m, "load_extra_mib", "%.0f").c_str(), check.c_str());
    out << line;
  }
  out << "\nRestart (medians; alloc = allocating the model's variables, restart = alloc + cold "
         "restore\n"
         "into them, raw = independent MPI-IO cold read into a freshly allocated buffer, same "
         "run)\n";
  std::snprintf(line, sizeof line, "%-5s %-6s | %9s %9s %9s %8s %s\n", "work", "ranks", "alloc s",
                "restart s", "raw s", "ratio", "(min-max)");
  out << line;
  for (const json& m : medians) {
    const std::string ranks = std::to_string(m.value("ranks", 0));
    std::snprintf(
        line, sizeof line, "%-5s %-6s | %9s %9s %9s %8s (%s-%s)\n",
        m.value("workload", "?").c_str(), ranks.c_str(), cell(m, "alloc_s", "%.3f").c_str(),
        cell(m, "restart_s", "%.3f").c_str(), cell(m, "raw_fresh_read_s", "%.3f").c_str(),
        cell(m, "restart_ratio", "%.2f").c_str(), cell(m, "restart_ratio_min", "%.2f").c_str(),
        cell(m, "restart_ratio_max", "%.2f").c_str());
    out << line;
  }
  print_metadata_table(out, medians);
  bool any_async = false;
  for (const json& m : medians) any_async = any_async || cell(m, "async_blocked_s", "%f") != "-";
  if (!any_async) return;
  out << "\nAsynchronous save (medians; blocked = caller's time in save_async, commit = call to "
         "durable\n"
         "commit, memcpy = plain copy of the rank's bytes, sync = the synchronous save above)\n";
  std::snprintf(line, sizeof line, "%-5s %-6s | %9s %9s %8s | %9s %8s %7s | %9s %9s\n", "work",
                "ranks", "blocked s", "memcpy s", "ratio", "commit s", "/sync", "range", "staging",
                "first s");
  out << line;
  for (const json& m : medians) {
    if (cell(m, "async_blocked_s", "%f") == "-") continue;
    const std::string ranks = std::to_string(m.value("save_ranks", 0));
    std::snprintf(
        line, sizeof line, "%-5s %-6s | %9s %9s %8s | %9s %8s %7s | %9s %9s\n",
        m.value("workload", "?").c_str(), ranks.c_str(), cell(m, "async_blocked_s", "%.3f").c_str(),
        cell(m, "memcpy_s", "%.3f").c_str(), cell(m, "async_blocked_ratio", "%.2f").c_str(),
        cell(m, "async_commit_s", "%.3f").c_str(), cell(m, "async_commit_ratio", "%.2f").c_str(),
        (cell(m, "async_commit_ratio_min", "%.2f") + "-" +
         cell(m, "async_commit_ratio_max", "%.2f"))
            .c_str(),
        (cell(m, "async_staging_mib", "%.0f") + " MiB").c_str(),
        cell(m, "async_first_blocked_s", "%.3f").c_str());
    out << line;
  }
}

}  // namespace cairn::bench
