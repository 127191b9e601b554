// SPDX-License-Identifier: Apache-2.0
#pragma once
// Figures about a manifest that several verbs print.
#include <cstdint>
#include <string>

#include "storage/manifest.hpp"

namespace cairn::inspect::detail {

struct ManifestSummary {
  int64_t tensors = 0;
  int64_t dataset_tensors = 0;
  int64_t packed_tensors = 0;
  int64_t tensor_bytes = 0;
  int64_t pieces = 0;
  int64_t states = 0;
  int64_t per_rank_states = 0;
  int64_t state_values = 0;
  int64_t state_bytes = 0;
  int64_t nodes = 0;
};

/// Local. The figures of `manifest`, read from `checkpoint` (named in errors). Throws kCorrupt
/// where a sum of bytes passes int64 (see add_bytes()).
ManifestSummary summarize(const Manifest& manifest, const std::string& checkpoint);
/// Local. Bytes of a tensor: elements times element size (the manifest decoder bounds each by
/// kMaxTensorBytes, 2^56).
int64_t tensor_bytes(const TensorRecord& t);
/// Local. Bytes of all saved values of a state of `checkpoint`; kCorrupt if they pass int64.
int64_t state_bytes(const StateRecord& s, const std::string& checkpoint);
/// Local. `total + bytes`, for sums of bytes over a manifest: each term is bounded, but a hostile
/// manifest may list enough of them (128 tensors of 2^56 bytes) to pass int64. Then kCorrupt
/// naming `checkpoint` and `key`, the entry whose bytes no longer fit.
int64_t add_bytes(int64_t total, int64_t bytes, const std::string& checkpoint,
                  const std::string& key);
/// "per_rank" or "global".
const char* scope_name(SavedScope scope) noexcept;
/// "1.0".
std::string format_version(const Manifest& manifest);

}  // namespace cairn::inspect::detail
