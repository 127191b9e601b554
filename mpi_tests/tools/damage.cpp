// SPDX-License-Identifier: Apache-2.0
#include "damage.hpp"

#include <hdf5.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "storage/manifest.hpp"
#include "storage/table.hpp"

namespace cairn::testing {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("damage: " + what);
}

struct File {
  hid_t id;
  File(const std::string& path, unsigned flags) : id(H5Fopen(path.c_str(), flags, H5P_DEFAULT)) {
    if (id < 0) fail("cannot open " + path);
  }
  ~File() { H5Fclose(id); }
};

std::string read_manifest(hid_t file) {
  hid_t ds = H5Dopen2(file, "/cairn/manifest", H5P_DEFAULT);
  if (ds < 0) fail("no manifest");
  hid_t space = H5Dget_space(ds);
  std::string text(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)), '\0');
  H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data());
  H5Sclose(space);
  H5Dclose(ds);
  return text;
}

// Every element of a one-dimensional dataset, converted to `mem_type`.
template <class T>
std::vector<T> read_vector(hid_t file, const char* name, hid_t mem_type) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) fail(std::string("no dataset ") + name);
  hid_t space = H5Dget_space(ds);
  std::vector<T> out(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  const herr_t status = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(space);
  H5Dclose(ds);
  if (status < 0) fail(std::string("cannot read ") + name);
  return out;
}

// Where every piece and blob lies, from the file's metadata of any format version: a 1.x manifest,
// or a 2.x header, table and every rank's record, decoded by the library's codecs.
Manifest locate(hid_t file, const std::string& path) {
  const std::string text = read_manifest(file);
  const Header header = decode_header(text, path);
  if (header.format_major == kLegacyMajor) return decode_manifest(text, path);
  // As unsigned bytes: HDF5 would clamp those above 127 converting to a signed char.
  const auto table_bytes = read_vector<char>(file, "/cairn/table", H5T_NATIVE_UCHAR);
  const GlobalTable table =
      decode_table(std::string_view(table_bytes.data(), table_bytes.size()), header, path);
  Manifest m = manifest_from_table(header, table);
  const auto records = read_vector<char>(file, "/cairn/records", H5T_NATIVE_UCHAR);
  const auto offsets = read_vector<int64_t>(file, "/cairn/record_offsets", H5T_NATIVE_INT64);
  for (int r = 0; r < header.world_size; ++r) {
    const auto at = static_cast<std::size_t>(offsets.at(static_cast<std::size_t>(r)));
    const auto end = static_cast<std::size_t>(offsets.at(static_cast<std::size_t>(r) + 1));
    add_record(
        m, table, header,
        decode_record(std::string_view(records.data() + at, end - at), r, table, header, path));
  }
  return m;
}

int64_t dataset_offset(hid_t file, const std::string& name) {
  hid_t ds = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (ds < 0) fail("no dataset " + name);
  const haddr_t off = H5Dget_offset(ds);
  H5Dclose(ds);
  if (off == HADDR_UNDEF) fail("dataset " + name + " has no contiguous storage");
  return static_cast<int64_t>(off);
}

void write_string_attribute(hid_t file, const char* name, const std::string& value) {
  if (H5Aexists(file, name) > 0) H5Adelete(file, name);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.size());
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr < 0 || H5Awrite(attr, type, value.data()) < 0) fail(std::string("cannot write ") + name);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

std::string read_string_attribute(hid_t file, const char* name) {
  hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  if (attr < 0) fail(std::string("no attribute ") + name);
  hid_t type = H5Aget_type(attr);
  std::string value(H5Tget_size(type), '\0');
  H5Aread(attr, type, value.data());
  H5Tclose(type);
  H5Aclose(attr);
  if (auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  return value;
}

}  // namespace

int64_t tensor_element_offset(const std::string& path, const std::string& key, int64_t element) {
  File file(path, H5F_ACC_RDONLY);
  const Manifest m = locate(file.id, path);
  for (const TensorRecord& t : m.tensors) {
    if (t.key != key) continue;
    const auto esize = static_cast<int64_t>(dtype_size(t.dtype));
    if (!t.packed) return dataset_offset(file.id, t.dataset) + element * esize;
    std::vector<int64_t> coord(t.shape.size());
    int64_t rem = element;
    for (std::size_t d = t.shape.size(); d-- > 0;) {
      coord[d] = rem % t.shape[d];
      rem /= t.shape[d];
    }
    for (const WrittenBox& box : t.boxes)
      for (const PieceRecord& piece : box.pieces) {
        const Shape& off = piece.box.offset;
        const Shape& cnt = piece.box.count;
        bool inside = true;
        int64_t local = 0;
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
          inside = inside && coord[d] >= off[d] && coord[d] < off[d] + cnt[d];
          local = local * cnt[d] + (coord[d] - off[d]);
        }
        if (inside)
          return dataset_offset(file.id, "/cairn/packed") + piece.packed_offset + local * esize;
      }
    fail("element " + std::to_string(element) + " of " + key + " is in no piece");
  }
  fail("no tensor " + key);
}

int64_t state_blob_offset(const std::string& path, const std::string& key, int rank) {
  File file(path, H5F_ACC_RDONLY);
  const Manifest m = locate(file.id, path);
  for (const StateRecord& s : m.states)
    if (s.key == key)
      for (const StateBlob& b : s.blobs)
        if (b.rank == rank) return dataset_offset(file.id, "/cairn/packed") + b.packed_offset;
  fail("no value of rank " + std::to_string(rank) + " for state " + key);
}

int64_t manifest_offset(const std::string& path) {
  File file(path, H5F_ACC_RDONLY);
  return dataset_offset(file.id, "/cairn/manifest");
}

void flip_byte(const std::string& path, int64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) fail("cannot open " + path);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(offset);
  f.write(&c, 1);
  if (!f) fail("cannot flip byte " + std::to_string(offset) + " of " + path);
}

void truncate_file(const std::string& path, int64_t bytes) {
  std::filesystem::resize_file(path, static_cast<std::uintmax_t>(bytes));
}

void remove_commit_mark(const std::string& path) {
  File file(path, H5F_ACC_RDWR);
  if (H5Adelete(file.id, "cairn_commit") < 0) fail("no commit mark in " + path);
}

namespace {

// Writes `text` (of the manifest's length: the dataset keeps its size) as the manifest, or in a
// 2.x file the header, and fixes the commit mark to match.
void rewrite_manifest(File& file, const std::string& text) {
  hid_t ds = H5Dopen2(file.id, "/cairn/manifest", H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data());
  H5Dclose(ds);
  json mark = json::parse(read_string_attribute(file.id, "cairn_commit"));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(text.data(), text.size())));
  mark["manifest_xxh3"] = hex;
  mark["manifest_bytes"] = text.size();
  write_string_attribute(file.id, "cairn_commit", mark.dump());
}

}  // namespace

void set_format_version(const std::string& path, const std::string& version) {
  File file(path, H5F_ACC_RDWR);
  std::string text = read_manifest(file.id);
  // Whatever version the file has ("1.0", "1.1" golden files, "2.0" fresh ones), of the same
  // length; a 2.x header names it the same way as a 1.x manifest.
  const std::string key = "\"format_version\":\"";
  const auto pos = text.find(key);
  const auto end = pos == std::string::npos ? pos : text.find('"', pos + key.size());
  if (end == std::string::npos || end - pos - key.size() != version.size())
    fail("cannot rewrite format_version");
  text.replace(pos + key.size(), version.size(), version);
  rewrite_manifest(file, text);
}

void replace_in_manifest(const std::string& path, const std::string& from, const std::string& to) {
  if (from.size() != to.size()) fail("replace_in_manifest needs texts of one length");
  File file(path, H5F_ACC_RDWR);
  std::string text = read_manifest(file.id);
  const auto pos = text.find(from);
  if (pos == std::string::npos) fail("'" + from + "' is not in the manifest");
  text.replace(pos, from.size(), to);
  rewrite_manifest(file, text);
}

void unlink_dataset(const std::string& path, const std::string& dataset) {
  File file(path, H5F_ACC_RDWR);
  if (H5Lmove(file.id, dataset.c_str(), file.id, (dataset + "-moved").c_str(), H5P_DEFAULT,
              H5P_DEFAULT) < 0)
    fail("cannot move " + dataset);
}

}  // namespace cairn::testing
