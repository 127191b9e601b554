// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checks shared by the manifest's reference decoder (manifest.cpp) and its direct codec
// (manifest_direct.cpp).
#include <cstdint>
#include <string>

#include "storage/manifest.hpp"

namespace cairn {

inline constexpr int kMaxWorldSize = 1 << 24;

/// Local. Throws ErrorCode::kCorrupt naming `key` if [offset, offset + bytes) is not inside the
/// packed dataset of `packed_total` bytes.
void check_packed_range(int64_t offset, int64_t bytes, int64_t packed_total,
                        const std::string& ckpt, const std::string& key);
/// Local. Throws ErrorCode::kCorrupt naming the key if a tensor record is inconsistent: absurd
/// shape, box outside the tensor or written by a rank outside the job, pieces that do not tile
/// their box, overlapping or missing boxes, packed range past the end.
void validate_tensor(const TensorRecord& t, const Manifest& m, const std::string& ckpt);

}  // namespace cairn
