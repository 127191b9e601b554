// SPDX-License-Identifier: Apache-2.0
#pragma once
// Damaging checkpoints on purpose, for the tests of `cairn verify` and of format compatibility:
// bytes flipped in place (as bit rot would), truncation, a removed commit mark, a rewritten
// manifest. Locations come from the file's metadata (a 1.x manifest, or a 2.x header, table and
// records, decoded by the library's codecs); files are changed with plain file I/O or HDF5.
#include <cstdint>
#include <string>

namespace cairn::testing {

/// Byte offset in the file of element `element` (row-major) of tensor `key`, dataset or packed.
int64_t tensor_element_offset(const std::string& path, const std::string& key, int64_t element);
/// Byte offset in the file of the first byte of the value rank `rank` saved for state `key`.
int64_t state_blob_offset(const std::string& path, const std::string& key, int rank);
/// Byte offset in the file of the manifest's first byte.
int64_t manifest_offset(const std::string& path);
/// XORs the byte at `offset` with 0x5a.
void flip_byte(const std::string& path, int64_t offset);
/// Cuts the file to `bytes` bytes.
void truncate_file(const std::string& path, int64_t bytes);
/// Deletes the cairn_commit attribute (what an interrupted save leaves).
void remove_commit_mark(const std::string& path);
/// Rewrites the manifest's format_version (same length as the file's, e.g. "1.0") and the commit
/// mark to match.
void set_format_version(const std::string& path, const std::string& version);
/// Replaces the first `from` in the manifest text (a 2.x file's header) with `to` (of the same
/// length) and rewrites the commit mark to match: a sound file with one changed value.
void replace_in_manifest(const std::string& path, const std::string& from, const std::string& to);
/// Renames a tensor's dataset, so that the manifest points at nothing.
void unlink_dataset(const std::string& path, const std::string& dataset);

}  // namespace cairn::testing
