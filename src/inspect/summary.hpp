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

ManifestSummary summarize(const Manifest& manifest);
/// Bytes of a tensor: elements times element size.
int64_t tensor_bytes(const TensorRecord& t);
/// Bytes of all saved values of a state.
int64_t state_bytes(const StateRecord& s);
/// "per_rank" or "global".
const char* scope_name(SavedScope scope) noexcept;
/// "1.0".
std::string format_version(const Manifest& manifest);

}  // namespace cairn::inspect::detail
