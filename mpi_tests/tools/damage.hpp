// SPDX-License-Identifier: Apache-2.0
#pragma once
// Damaging checkpoints on purpose, for the tests of `cairn verify`, of hostile files and of format
// compatibility: bytes flipped in place (as bit rot would), truncation, a removed commit mark,
// rewritten metadata (the header, the table, the records) with a commit mark that matches, so
// that the damage is past the checksums. Locations come from the file's own metadata (format 1.x
// or 2.x, read with cairn's reader); files are changed with plain file I/O or HDF5.
#include <cstdint>
#include <string>
#include <vector>

namespace cairn::testing {

/// Byte offset in the file of element `element` (row-major) of tensor `key`, dataset or packed.
int64_t tensor_element_offset(const std::string& path, const std::string& key, int64_t element);
/// Byte offset in the file of the first byte of the value rank `rank` saved for state `key`.
int64_t state_blob_offset(const std::string& path, const std::string& key, int rank);
/// Byte offset in the file of the first byte of the header (format 2.x; the manifest in 1.x).
int64_t manifest_offset(const std::string& path);
/// Byte offset in the file of the first byte of the table (format 2.x).
int64_t table_offset(const std::string& path);
/// Byte offset in the file of the first byte of rank `rank`'s record (format 2.x).
int64_t record_offset(const std::string& path, int rank);
/// XORs the byte at `offset` with 0x5a.
void flip_byte(const std::string& path, int64_t offset);
/// Cuts the file to `bytes` bytes.
void truncate_file(const std::string& path, int64_t bytes);
/// Deletes the cairn_commit attribute (what an interrupted save leaves).
void remove_commit_mark(const std::string& path);
/// Rewrites the header's format_version (same length as the file's, e.g. "2.7") and the commit
/// mark to match. Works on 1.x manifests too.
void set_format_version(const std::string& path, const std::string& version);
/// Replaces the first `from` in the header (1.x: the manifest) text with `to` (of the same length)
/// and rewrites the commit mark to match: a sound file with one changed value.
void replace_in_manifest(const std::string& path, const std::string& from, const std::string& to);
/// Renames a tensor's dataset, so that the metadata points at nothing.
void unlink_dataset(const std::string& path, const std::string& dataset);

/// The bytes of one-dimensional u8 dataset `name` (e.g. "/cairn/table").
std::string read_byte_dataset(const std::string& path, const std::string& name);
/// Replaces dataset `name` by a u8 dataset holding `bytes` (of any length). For the header
/// ("/cairn/manifest") and the table ("/cairn/table") the commit mark's size and checksum are
/// rewritten to match; the records carry their own checksums.
void write_byte_dataset(const std::string& path, const std::string& name, const std::string& bytes);
/// The elements of `/cairn/record_offsets`.
std::vector<int64_t> read_record_offsets(const std::string& path);
/// Replaces `/cairn/record_offsets` by `offsets` (of any length).
void write_record_offsets(const std::string& path, const std::vector<int64_t>& offsets);
/// Sets byte `field` (4 dtype, 5 storage, 6 layout, 7 ndim) of tensor `key`'s element of the
/// table's tensors section to `value`, past the checksum: what the codec's enums cannot express.
void patch_table_tensor(const std::string& path, const std::string& key, int field, uint8_t value);
/// Overwrites bytes of the table at `offset` with `bytes` and rewrites the commit mark to match.
void patch_table(const std::string& path, int64_t offset, const std::string& bytes);
/// Where section `id` of the table's directory is: its entry's byte offset in the table, and the
/// section's offset and count. Fails if there is no such section.
struct TableSection {
  int64_t entry = 0;
  int64_t offset = 0;
  int64_t count = 0;
};
TableSection table_section(const std::string& path, uint32_t id);

}  // namespace cairn::testing
