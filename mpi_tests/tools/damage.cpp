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

#include "cairn/tensor/dtype.hpp"
#include "storage/container_reader.hpp"

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

std::string read_bytes(hid_t file, const std::string& name) {
  hid_t ds = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (ds < 0) fail("no dataset " + name);
  hid_t space = H5Dget_space(ds);
  std::string text(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)), '\0');
  const herr_t status =
      text.empty() ? 0 : H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data());
  H5Sclose(space);
  H5Dclose(ds);
  if (status < 0) fail("cannot read " + name);
  return text;
}

std::string read_manifest(hid_t file) {
  return read_bytes(file, "/cairn/manifest");
}

// The whole decoded metadata of a committed checkpoint (every record of a 2.x file), as the tools
// see it.
Manifest decoded(const std::string& path) {
  detail::ContainerReader reader(nullptr, path);
  Manifest m = reader.take_manifest();
  reader.close();
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
  const Manifest m = decoded(path);
  File file(path, H5F_ACC_RDONLY);
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
        bool inside = true;
        int64_t local = 0;
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
          const int64_t off = piece.box.offset[d], cnt = piece.box.count[d];
          inside = inside && coord[d] >= off && coord[d] < off + cnt;
          local = local * cnt + (coord[d] - off);
        }
        if (inside)
          return dataset_offset(file.id, "/cairn/packed") + piece.packed_offset + local * esize;
      }
    fail("element " + std::to_string(element) + " of " + key + " is in no piece");
  }
  fail("no tensor " + key);
}

int64_t state_blob_offset(const std::string& path, const std::string& key, int rank) {
  const Manifest m = decoded(path);
  File file(path, H5F_ACC_RDONLY);
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

int64_t table_offset(const std::string& path) {
  File file(path, H5F_ACC_RDONLY);
  return dataset_offset(file.id, "/cairn/table");
}

int64_t record_offset(const std::string& path, int rank) {
  const std::vector<int64_t> offsets = read_record_offsets(path);
  if (rank < 0 || static_cast<std::size_t>(rank) + 1 >= offsets.size())
    fail("no record of rank " + std::to_string(rank));
  File file(path, H5F_ACC_RDONLY);
  return dataset_offset(file.id, "/cairn/records") + offsets[static_cast<std::size_t>(rank)];
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

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Sets the commit mark's size and checksum of the header or the table to match `bytes`.
void match_commit_mark(hid_t file, const std::string& name, const std::string& bytes) {
  const char* member = name == "/cairn/manifest" ? "manifest"
                       : name == "/cairn/table"  ? "table"
                                                 : nullptr;
  if (!member) return;
  json mark = json::parse(read_string_attribute(file, "cairn_commit"));
  mark[std::string(member) + "_bytes"] = bytes.size();
  mark[std::string(member) + "_xxh3"] = hex(XXH3_64bits(bytes.data(), bytes.size()));
  write_string_attribute(file, "cairn_commit", mark.dump());
}

// Writes `text` (of the manifest's length) as the manifest and fixes the commit mark to match.
void rewrite_manifest(File& file, const std::string& text) {
  hid_t ds = H5Dopen2(file.id, "/cairn/manifest", H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data());
  H5Dclose(ds);
  match_commit_mark(file.id, "/cairn/manifest", text);
}

}  // namespace

void set_format_version(const std::string& path, const std::string& version) {
  File file(path, H5F_ACC_RDWR);
  std::string text = read_manifest(file.id);
  // Whatever version the file has ("1.0", "1.1" golden files, "2.0" fresh ones), of the same
  // length.
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

std::string read_byte_dataset(const std::string& path, const std::string& name) {
  File file(path, H5F_ACC_RDONLY);
  return read_bytes(file.id, name);
}

void write_byte_dataset(const std::string& path, const std::string& name,
                        const std::string& bytes) {
  File file(path, H5F_ACC_RDWR);
  // A new dataset of the new size; the old one's space is left unused.
  if (H5Lexists(file.id, name.c_str(), H5P_DEFAULT) > 0 &&
      H5Ldelete(file.id, name.c_str(), H5P_DEFAULT) < 0)
    fail("cannot unlink " + name);
  const hsize_t n = bytes.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t ds =
      H5Dcreate2(file.id, name.c_str(), H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = ds >= 0 && (n == 0 || H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL,
                                                 H5P_DEFAULT, bytes.data()) >= 0);
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  if (!ok) fail("cannot write " + name);
  match_commit_mark(file.id, name, bytes);
}

std::vector<int64_t> read_record_offsets(const std::string& path) {
  File file(path, H5F_ACC_RDONLY);
  hid_t ds = H5Dopen2(file.id, "/cairn/record_offsets", H5P_DEFAULT);
  if (ds < 0) fail("no record offsets in " + path);
  hid_t space = H5Dget_space(ds);
  std::vector<int64_t> out(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  const herr_t status = H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(space);
  H5Dclose(ds);
  if (status < 0) fail("cannot read the record offsets of " + path);
  return out;
}

void write_record_offsets(const std::string& path, const std::vector<int64_t>& offsets) {
  File file(path, H5F_ACC_RDWR);
  if (H5Ldelete(file.id, "/cairn/record_offsets", H5P_DEFAULT) < 0)
    fail("cannot unlink the record offsets");
  const hsize_t n = offsets.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t ds = H5Dcreate2(file.id, "/cairn/record_offsets", H5T_STD_I64LE, space, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = ds >= 0 && (n == 0 || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                                                 H5P_DEFAULT, offsets.data()) >= 0);
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  if (!ok) fail("cannot write the record offsets");
}

namespace {

uint64_t le(const std::string& bytes, int64_t at, int width) {
  if (at < 0 || at + width > static_cast<int64_t>(bytes.size())) fail("table too short");
  uint64_t v = 0;
  for (int i = width; i-- > 0;)
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(at + i)]);
  return v;
}

}  // namespace

TableSection table_section(const std::string& path, uint32_t id) {
  const std::string table = read_byte_dataset(path, "/cairn/table");
  const uint64_t sections = le(table, 12, 4);
  for (uint64_t i = 0; i < sections; ++i) {
    const auto entry = static_cast<int64_t>(16 + 24 * i);
    if (le(table, entry, 4) == id)
      return {entry, static_cast<int64_t>(le(table, entry + 8, 8)),
              static_cast<int64_t>(le(table, entry + 16, 8))};
  }
  fail("no section " + std::to_string(id) + " in the table of " + path);
}

void patch_table(const std::string& path, int64_t offset, const std::string& bytes) {
  std::string table = read_byte_dataset(path, "/cairn/table");
  if (offset < 0 ||
      offset + static_cast<int64_t>(bytes.size()) > static_cast<int64_t>(table.size()))
    fail("patch outside the table");
  table.replace(static_cast<std::size_t>(offset), bytes.size(), bytes);
  write_byte_dataset(path, "/cairn/table", table);
}

void patch_table_tensor(const std::string& path, const std::string& key, int field, uint8_t value) {
  const Manifest m = decoded(path);
  for (std::size_t i = 0; i < m.tensors.size(); ++i)
    if (m.tensors[i].key == key) {
      // The tensors are in table order in the decoded manifest; section 5, 24-byte elements.
      const TableSection tensors = table_section(path, 5);
      patch_table(path, tensors.offset + 24 * static_cast<int64_t>(i) + field,
                  std::string(1, static_cast<char>(value)));
      return;
    }
  fail("no tensor " + key);
}

}  // namespace cairn::testing
