// SPDX-License-Identifier: Apache-2.0
#pragma once
// The names of the container's HDF5 objects and of the directory's state file, kept in one place
// so that the writer, the readers and the inspection tools cannot drift apart. docs/format.md is
// the normative description of what they hold.
#include <string>

namespace cairn::detail::schema {

/// The group of cairn's own datasets.
inline constexpr const char* kGroup = "/cairn";
/// u8[manifest_bytes]: the header (format 2.x) or the whole manifest (1.x).
inline constexpr const char* kManifestDataset = "/cairn/manifest";
/// u8[table_bytes]: the global table (format 2.x).
inline constexpr const char* kTableDataset = "/cairn/table";
/// u8[records_bytes]: every rank's record, in rank order (format 2.x).
inline constexpr const char* kRecordsDataset = "/cairn/records";
/// i64[world_size + 1]: where each rank's record starts (format 2.x).
inline constexpr const char* kRecordOffsetsDataset = "/cairn/record_offsets";
/// u8[packed_bytes]: small tensors and opaque state.
inline constexpr const char* kPackedDataset = "/cairn/packed";
/// i64[world_size + 1]: where each rank's packed region starts (since format 1.1).
inline constexpr const char* kPackedRanksDataset = "/cairn/packed_ranks";
/// Root attribute: "cairn-checkpoint <major>.<minor>", written when the file is created.
inline constexpr const char* kFormatAttribute = "cairn_format";
/// Root attribute: the commit mark, written last.
inline constexpr const char* kCommitAttribute = "cairn_commit";
/// The state file in a checkpoint directory (cairn::kStateFileName, checked to be equal).
inline constexpr const char* kStateFileName = "cairn-state.json";

/// The dataset of a tensor stored in a dataset of its own.
inline std::string tensor_dataset(const std::string& key) {
  return "/tensors/" + key;
}

/// The text of the kFormatAttribute attribute.
inline std::string format_attribute_text(int major, int minor) {
  return "cairn-checkpoint " + std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace cairn::detail::schema
