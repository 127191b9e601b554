// SPDX-License-Identifier: Apache-2.0
// cairn ls: the tensors (and opaque states) of a checkpoint, sorted by key.
#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "core/printable.hpp"
#include "inspect/probe.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::inspect {
namespace {

using nlohmann::ordered_json;

template <class Record>
std::vector<const Record*> sorted_by_key(const std::vector<Record>& records) {
  std::vector<const Record*> out;
  for (const Record& r : records) out.push_back(&r);
  std::sort(out.begin(), out.end(),
            [](const Record* a, const Record* b) { return a->key < b->key; });
  return out;
}

int64_t piece_count(const TensorRecord& t) {
  int64_t n = 0;
  for (const WrittenBox& wb : t.boxes) n += static_cast<int64_t>(wb.pieces.size());
  return n;
}

}  // namespace

int ls(const LsOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  const detail::Probe p = detail::probe_file(options.path);
  if (p.status != detail::FileStatus::kCommitted) detail::throw_probe_error(p);
  const Manifest& m = *p.manifest;
  const auto tensors = sorted_by_key(m.tensors);
  const auto states = sorted_by_key(m.states);
  if (options.json) {
    ordered_json j;
    j["path"] = p.path;
    if (p.part)
      j["part"] = {
          {"index", p.part->index}, {"count", p.part->count}, {"writers", p.part->writers}};
    ordered_json tj = ordered_json::array();
    for (const TensorRecord* t : tensors) {
      ordered_json e;
      e["key"] = t->key;
      e["dtype"] = dtype_name(t->dtype);
      e["shape"] = t->shape;
      e["bytes"] = detail::tensor_bytes(*t);
      e["layout"] = t->layout;
      e["storage"] = t->packed ? "packed" : "dataset";
      if (!t->packed) e["dataset"] = t->dataset;
      e["boxes"] = t->boxes.size();
      e["pieces"] = piece_count(*t);
      tj.push_back(std::move(e));
    }
    j["tensors"] = std::move(tj);
    ordered_json sj = ordered_json::array();
    for (const StateRecord* s : states)
      sj.push_back(ordered_json{{"key", s->key},
                                {"scope", detail::scope_name(s->scope)},
                                {"values", s->blobs.size()},
                                {"bytes", detail::state_bytes(*s, p.path)}});
    j["states"] = std::move(sj);
    out << j.dump(2) << '\n';
    return kExitOk;
  }
  // A part holds only its writers' pieces of the sharded tensors: say so before the keys, so the
  // listing is not taken for the whole checkpoint's.
  if (p.part)
    out << detail::describe_part(*p.part)
        << ": the tensors' pieces its writers saved, and its own copy of the replicated tensors "
           "and global state\n\n";
  detail::Table table({"key", "dtype", "shape", "bytes", "layout", "storage"},
                      {false, false, false, true, false, false});
  int64_t total = 0;
  for (const TensorRecord* t : tensors) {
    const int64_t bytes = detail::tensor_bytes(*t);
    total = detail::add_bytes(total, bytes, p.path, t->key);
    table.add({cairn::detail::printable(t->key), std::string(dtype_name(t->dtype)),
               shape_to_string(t->shape), std::to_string(bytes), t->layout,
               t->packed ? "packed" : "dataset"});
  }
  if (!table.empty()) table.print(out);
  out << detail::plural(static_cast<int64_t>(tensors.size()), "tensor") << ", "
      << detail::human_bytes(total) << '\n';
  if (!states.empty()) {
    detail::Table st({"state", "scope", "values", "bytes"}, {false, false, true, true});
    for (const StateRecord* s : states)
      st.add({cairn::detail::printable(s->key), detail::scope_name(s->scope),
              std::to_string(s->blobs.size()), std::to_string(detail::state_bytes(*s, p.path))});
    out << '\n';
    st.print(out);
    out << detail::plural(static_cast<int64_t>(states.size()), "state") << '\n';
  }
  return kExitOk;
}

}  // namespace cairn::inspect
