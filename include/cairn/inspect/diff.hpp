// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn diff A B`: what changed between two checkpoints.
#include <cstdint>
#include <iosfwd>
#include <string>

namespace cairn::inspect {

struct DiffOptions {
  std::string a;
  std::string b;
  int64_t chunk_bytes = int64_t{8} << 20;  // tensors are compared in chunks of this size
  bool changes_only = false;               // leave identical tensors and states out of the table
  bool json = false;                       // one JSON object instead of the table
};

/// Local. Lists tensors and states added (in B only) and removed (in A only), tensors whose dtype
/// or shape changed, and for every other common tensor "identical" or the number of differing
/// elements with the largest absolute difference |a - b| and the largest relative difference
/// |a - b| / max(|a|, |b|). Tensors are streamed in chunks (memory stays bounded) and every piece
/// read is checked against its checksum. Returns kExitOk when nothing differs, kExitFailed
/// otherwise. Throws cairn::Error when a checkpoint cannot be read, and a VerbError exiting
/// kExitDamaged when one is damaged or not committed (so that damage never reads as "differs").
int diff(const DiffOptions& options, std::ostream& out);

}  // namespace cairn::inspect
