// SPDX-License-Identifier: Apache-2.0
#include "inspect/summary.hpp"

namespace cairn::inspect::detail {

int64_t tensor_bytes(const TensorRecord& t) {
  return shape_volume(t.shape) * static_cast<int64_t>(dtype_size(t.dtype));
}

int64_t state_bytes(const StateRecord& s) {
  int64_t bytes = 0;
  for (const StateBlob& b : s.blobs) bytes += b.bytes;
  return bytes;
}

const char* scope_name(SavedScope scope) noexcept {
  return scope == SavedScope::kPerRank ? "per_rank" : "global";
}

std::string format_version(const Manifest& manifest) {
  return std::to_string(manifest.format_major) + "." + std::to_string(manifest.format_minor);
}

ManifestSummary summarize(const Manifest& m) {
  ManifestSummary s;
  s.nodes = static_cast<int64_t>(m.nodes.size());
  for (const TensorRecord& t : m.tensors) {
    ++s.tensors;
    ++(t.packed ? s.packed_tensors : s.dataset_tensors);
    s.tensor_bytes += tensor_bytes(t);
    for (const WrittenBox& wb : t.boxes) s.pieces += static_cast<int64_t>(wb.pieces.size());
  }
  for (const StateRecord& st : m.states) {
    ++s.states;
    if (st.scope == SavedScope::kPerRank) ++s.per_rank_states;
    s.state_values += static_cast<int64_t>(st.blobs.size());
    s.state_bytes += state_bytes(st);
  }
  return s;
}

}  // namespace cairn::inspect::detail
