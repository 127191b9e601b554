// SPDX-License-Identifier: Apache-2.0
#include "inspect/summary.hpp"

#include "cairn/core/error.hpp"

namespace cairn::inspect::detail {

int64_t tensor_bytes(const TensorRecord& t) {
  return shape_volume(t.shape) * static_cast<int64_t>(dtype_size(t.dtype));
}

int64_t state_bytes(const StateRecord& s, const std::string& checkpoint) {
  int64_t bytes = 0;
  for (const StateBlob& b : s.blobs) bytes = add_bytes(bytes, b.bytes, checkpoint, s.key);
  return bytes;
}

int64_t add_bytes(int64_t total, int64_t bytes, const std::string& checkpoint,
                  const std::string& key) {
  int64_t sum = 0;
  if (__builtin_add_overflow(total, bytes, &sum))
    throw Error(ErrorCode::kCorrupt,
                "manifest: the sizes of its entries add up to more than 2^63 "
                "bytes (" +
                    std::to_string(total) + " bytes before this entry's " + std::to_string(bytes) +
                    ")",
                {.checkpoint = checkpoint, .key = key});
  return sum;
}

const char* scope_name(SavedScope scope) noexcept {
  return scope == SavedScope::kPerRank ? "per_rank" : "global";
}

std::string format_version(const Manifest& manifest) {
  return std::to_string(manifest.format_major) + "." + std::to_string(manifest.format_minor);
}

ManifestSummary summarize(const Manifest& m, const std::string& checkpoint) {
  ManifestSummary s;
  s.nodes = static_cast<int64_t>(m.nodes.size());
  for (const TensorRecord& t : m.tensors) {
    ++s.tensors;
    ++(t.packed ? s.packed_tensors : s.dataset_tensors);
    s.tensor_bytes = add_bytes(s.tensor_bytes, tensor_bytes(t), checkpoint, t.key);
    for (const WrittenBox& wb : t.boxes) s.pieces += static_cast<int64_t>(wb.pieces.size());
  }
  for (const StateRecord& st : m.states) {
    ++s.states;
    if (st.scope == SavedScope::kPerRank) ++s.per_rank_states;
    s.state_values += static_cast<int64_t>(st.blobs.size());
    s.state_bytes = add_bytes(s.state_bytes, state_bytes(st, checkpoint), checkpoint, st.key);
  }
  return s;
}

}  // namespace cairn::inspect::detail
