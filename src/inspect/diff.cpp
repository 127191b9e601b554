// SPDX-License-Identifier: Apache-2.0
// cairn diff: keys added and removed, dtype and shape changes, and value differences of the
// common tensors, compared chunk by chunk.
#include "cairn/inspect/diff.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <vector>

#include "cairn/inspect/common.hpp"
#include "inspect/probe.hpp"
#include "inspect/scan.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "inspect/values.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/tensor_read.hpp"

namespace cairn::inspect {
namespace {

using nlohmann::ordered_json;

struct Difference {
  int64_t differing = 0;  // elements whose bytes differ
  double max_abs = 0;     // NaN when a NaN met a number
  double max_rel = 0;
};

void take_max(double& acc, double v) {
  if (std::isnan(acc)) return;
  if (std::isnan(v) || v > acc) acc = v;
}

Difference compare_tensor(detail::Probe& a, const TensorRecord& ta, detail::Probe& b,
                          const TensorRecord& tb, int64_t chunk_bytes) {
  Difference d;
  const auto esize = static_cast<int64_t>(dtype_size(ta.dtype));
  const Box whole = Box::whole(ta.shape);
  std::vector<std::byte> left;
  detail::for_each_chunk(
      *a.reader, ta, whole, chunk_bytes, [&](const Box& chunk, const std::byte* data) {
        left.assign(data, data + chunk.volume() * esize);
        std::vector<std::byte> right(left.size());
        cairn::detail::PackedReadBatch packed;
        cairn::detail::read_tensor(*b.reader, tb, {chunk}, {right.data()}, packed);
        packed.run(*b.reader, chunk_bytes);
        if (std::memcmp(left.data(), right.data(), left.size()) == 0) return true;
        const int64_t n = chunk.volume();
        for (int64_t i = 0; i < n; ++i) {
          const std::byte* x = left.data() + i * esize;
          const std::byte* y = right.data() + i * esize;
          if (std::memcmp(x, y, static_cast<std::size_t>(esize)) == 0) continue;
          ++d.differing;
          const double diff = detail::abs_difference(ta.dtype, x, y);
          const double scale = std::max(std::fabs(detail::to_double(ta.dtype, x)),
                                        std::fabs(detail::to_double(ta.dtype, y)));
          double rel = diff == 0          ? 0
                       : std::isinf(diff) ? std::numeric_limits<double>::infinity()
                                          : diff / scale;
          take_max(d.max_abs, diff);
          take_max(d.max_rel, rel);
        }
        return true;
      });
  return d;
}

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string describe(const TensorRecord& t) {
  return std::string(dtype_name(t.dtype)) + " " + shape_to_string(t.shape);
}

std::string read_blob(detail::Probe& p, const StateRecord& s, const StateBlob& blob) {
  std::string bytes;
  cairn::detail::PackedReadBatch batch;
  cairn::detail::read_state_blob(s, blob, bytes, batch);
  batch.run(*p.reader, std::max<int64_t>(blob.bytes, 1));
  return bytes;
}

// "identical", "differs", or a scope/count change, for one state present in both.
std::string compare_state(detail::Probe& a, const StateRecord& sa, detail::Probe& b,
                          const StateRecord& sb, bool& changed) {
  changed = true;
  if (sa.scope != sb.scope)
    return std::string("scope ") + detail::scope_name(sa.scope) + " -> " +
           detail::scope_name(sb.scope);
  if (sa.blobs.size() != sb.blobs.size())
    return detail::plural(static_cast<int64_t>(sa.blobs.size()), "value") + " -> " +
           std::to_string(sb.blobs.size());
  int64_t differing = 0;
  for (std::size_t i = 0; i < sa.blobs.size(); ++i)
    if (sa.blobs[i].bytes != sb.blobs[i].bytes ||
        read_blob(a, sa, sa.blobs[i]) != read_blob(b, sb, sb.blobs[i]))
      ++differing;
  changed = differing > 0;
  if (!changed) return "identical";
  return std::to_string(differing) + " of " +
         detail::plural(static_cast<int64_t>(sa.blobs.size()), "value") + " differ";
}

// One line of the comparison; `figures` holds the numbers of a tensor that differs (for --json).
struct DiffRow {
  std::string key;
  std::string kind;  // "tensor" or "state"
  std::string result;
  std::string details;
  ordered_json figures;
};

// NaN (a NaN met a number) is not a JSON number.
ordered_json json_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return "inf";
  return v;
}

ordered_json side_json(const detail::Probe& p) {
  const Manifest& m = *p.manifest;
  return {{"path", p.path},
          {"save_counter", m.save_counter},
          {"world_size", m.world_size},
          {"tensors", m.tensors.size()},
          {"states", m.states.size()}};
}

std::string header(const detail::Probe& p) {
  const Manifest& m = *p.manifest;
  return p.path + "  (save counter " + std::to_string(m.save_counter) + ", " +
         detail::plural(m.world_size, "rank") + ", " +
         detail::plural(static_cast<int64_t>(m.tensors.size()), "tensor") + ")";
}

int diff_checkpoints(const DiffOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  detail::Probe a = detail::open_committed(options.a);
  detail::Probe b = detail::open_committed(options.b);
  const int64_t chunk = std::max<int64_t>(options.chunk_bytes, 64);
  std::map<std::string, const TensorRecord*> ta, tb;
  for (const TensorRecord& t : a.manifest->tensors) ta.emplace(t.key, &t);
  for (const TensorRecord& t : b.manifest->tensors) tb.emplace(t.key, &t);
  std::set<std::string> keys;
  for (const auto& kv : ta) keys.insert(kv.first);
  for (const auto& kv : tb) keys.insert(kv.first);

  std::vector<DiffRow> rows;
  int64_t identical = 0, differ = 0, added = 0, removed = 0, changed = 0;
  for (const std::string& key : keys) {
    auto x = ta.find(key), y = tb.find(key);
    if (y == tb.end()) {
      ++removed;
      rows.push_back({key, "tensor", "removed", describe(*x->second), {}});
    } else if (x == ta.end()) {
      ++added;
      rows.push_back({key, "tensor", "added", describe(*y->second), {}});
    } else if (x->second->dtype != y->second->dtype || x->second->shape != y->second->shape) {
      ++changed;
      rows.push_back(
          {key, "tensor", "changed", describe(*x->second) + " -> " + describe(*y->second), {}});
    } else {
      const Difference d = compare_tensor(a, *x->second, b, *y->second, chunk);
      if (d.differing == 0) {
        ++identical;
        if (!options.changes_only) rows.push_back({key, "tensor", "identical", "", {}});
      } else {
        ++differ;
        const int64_t n = shape_volume(x->second->shape);
        rows.push_back({key,
                        "tensor",
                        "differs",
                        std::to_string(d.differing) + " of " + std::to_string(n) +
                            " elements, max abs " + number(d.max_abs) + ", max rel " +
                            number(d.max_rel),
                        {{"elements", n},
                         {"differing", d.differing},
                         {"max_abs", json_number(d.max_abs)},
                         {"max_rel", json_number(d.max_rel)}}});
      }
    }
  }
  std::map<std::string, const StateRecord*> sa, sb;
  for (const StateRecord& s : a.manifest->states) sa.emplace(s.key, &s);
  for (const StateRecord& s : b.manifest->states) sb.emplace(s.key, &s);
  std::set<std::string> state_keys;
  for (const auto& kv : sa) state_keys.insert(kv.first);
  for (const auto& kv : sb) state_keys.insert(kv.first);
  int64_t states_same = 0, states_changed = 0, states_added = 0, states_removed = 0;
  for (const std::string& key : state_keys) {
    auto x = sa.find(key), y = sb.find(key);
    if (y == sb.end()) {
      ++states_removed;
      rows.push_back({key, "state", "removed", "state", {}});
    } else if (x == sa.end()) {
      ++states_added;
      rows.push_back({key, "state", "added", "state", {}});
    } else {
      bool state_changed = false;
      const std::string result = compare_state(a, *x->second, b, *y->second, state_changed);
      ++(state_changed ? states_changed : states_same);
      if (state_changed || !options.changes_only)
        rows.push_back({key,
                        "state",
                        state_changed ? "differs" : "identical",
                        state_changed ? result : "",
                        {}});
    }
  }
  const int64_t differences =
      differ + changed + added + removed + states_changed + states_added + states_removed;
  if (options.json) {
    ordered_json j;
    j["a"] = side_json(a);
    j["b"] = side_json(b);
    ordered_json list = ordered_json::array();
    for (const DiffRow& r : rows) {
      ordered_json e{{"key", r.key}, {"kind", r.kind}, {"result", r.result}};
      if (!r.details.empty()) e["details"] = r.details;
      for (const auto& [name, value] : r.figures.items()) e[name] = value;
      list.push_back(std::move(e));
    }
    j["entries"] = std::move(list);
    j["tensors"] = {{"identical", identical},
                    {"differ", differ},
                    {"changed", changed},
                    {"added", added},
                    {"removed", removed}};
    j["states"] = {{"identical", states_same},
                   {"differ", states_changed},
                   {"added", states_added},
                   {"removed", states_removed}};
    j["differ"] = differences > 0;
    out << j.dump(2) << '\n';
    return differences == 0 ? kExitOk : kExitFailed;
  }
  out << "A  " << header(a) << "\nB  " << header(b) << "\n\n";
  detail::Table table({"key", "result", "details"});
  for (const DiffRow& r : rows) table.add({r.key, r.result, r.details});
  if (!table.empty()) table.print(out);
  out << "\n"
      << identical << " identical, " << differ << " differ, " << changed
      << " changed dtype or shape, " << added << " added, " << removed << " removed tensors";
  if (!state_keys.empty())
    out << "; " << states_same << " identical, " << states_changed << " differ, " << states_added
        << " added, " << states_removed << " removed states";
  out << '\n';
  return differences == 0 ? kExitOk : kExitFailed;
}

}  // namespace

int diff(const DiffOptions& options, std::ostream& out) {
  try {
    return diff_checkpoints(options, out);
  } catch (const VerbError&) {
    throw;
  } catch (const Error& e) {
    // "Differs" is 1: damage (a checksum mismatch, no commit mark, a damaged manifest) must not
    // read as a difference.
    if (e.code() == ErrorCode::kCorrupt) throw VerbError(e, kExitDamaged);
    throw;
  }
}

}  // namespace cairn::inspect
