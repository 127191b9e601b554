// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: opening a container file the ways cairn does. The input bytes are written to
// a temporary file, which is then
//   1. checked by `cairn verify`'s library function (local, POSIX driver, bounded reads);
//   2. opened with CheckpointReader (local, POSIX driver): every tensor of at most 1 MiB and every
//      state value is loaded, checksums verified;
//   3. restored into the model of fuzz_model.hpp with Checkpoint::read on a one-rank session over
//      MPI_COMM_SELF: the collective path of restore, through MPI-IO.
// Each must succeed or throw cairn::Error. The header (1.x: the manifest) and the table (2.x) are
// bound to the commit mark by their XXH3, so almost every mutation of them would stop at the
// checksum; when the file is otherwise readable, a second round rewrites the commit mark to match
// the (mutated) header and table and runs the three readers again, so that fuzzed metadata reaches
// the decoders, validation and the reads. The same round sets each record's body checksum (2.x)
// to match its body, so that fuzzed records reach the record decoder too.
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/inspect/verify.hpp"
#include "fuzz_model.hpp"
#include "storage/checksum.hpp"
#include "storage/container_reader.hpp"
#include "storage/h5_handle.hpp"
#include "storage/manifest.hpp"

namespace {

using namespace cairn;

// Tensors larger than this are listed but not loaded: CheckpointReader allocates what the
// manifest's shape asks for, which a hostile manifest sets as large as validation allows (2^56).
constexpr int64_t kMaxLoadBytes = int64_t{1} << 20;
constexpr int64_t kMaxFixupManifestBytes = int64_t{1} << 20;

std::filesystem::path& work_dir() {
  static std::filesystem::path dir;
  return dir;
}

void finalize() {
  std::error_code ignored;
  if (!work_dir().empty()) std::filesystem::remove_all(work_dir(), ignored);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

const Session& session() {
  // Created on first use, after finalize() was registered: destroyed before MPI_Finalize.
  static Session s(MPI_COMM_SELF, fuzz::kSessionOptions);
  return s;
}

void run_verify(const std::string& path) {
  std::ostringstream sink;
  try {
    inspect::verify({.path = path, .chunk_bytes = 4096}, nullptr, sink);
  } catch (const Error&) {
  }
}

void run_reader(const std::string& path) {
  try {
    CheckpointReader reader(path);
    for (const VariableInfo& info : reader.list_variables())
      if (info.bytes <= kMaxLoadBytes) {
        try {
          (void)reader.load_bytes(info.key);
        } catch (const Error&) {
        }
      }
    // Every state's every value: the keys and ranks come from the metadata, 1.x or 2.x.
    detail::ContainerReader metadata(nullptr, path);
    const Manifest m = metadata.take_manifest();
    for (const StateRecord& s : m.states)
      for (const StateBlob& blob : s.blobs) {
        try {
          (void)reader.load_state(s.key, blob.rank);
        } catch (const Error&) {
        }
      }
  } catch (const Error&) {
  }
}

void run_restore(const std::string& path) {
  fuzz::Model model = fuzz::make_model(session());
  Checkpoint ckpt(session(), {{"net", model.root}});
  try {
    ckpt.read(path).expect_partial();
  } catch (const Error&) {
  }
}

void run_all(const std::string& path) {
  run_verify(path);
  run_reader(path);
  run_restore(path);
}

// The bytes of the one-dimensional u8 dataset `name`, if the file has one of at most
// kMaxFixupManifestBytes.
std::optional<std::string> read_small_bytes(hid_t file, const char* name) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return std::nullopt;
  h5::Dataset ds(H5Dopen2(file, name, H5P_DEFAULT));
  if (!ds.valid()) return std::nullopt;
  h5::Dataspace space(H5Dget_space(ds.get()));
  h5::Datatype type(H5Dget_type(ds.get()));
  if (!space.valid() || !type.valid() || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Tget_size(type.get()) != 1 || H5Sget_simple_extent_ndims(space.get()) != 1)
    return std::nullopt;
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > kMaxFixupManifestBytes) return std::nullopt;
  std::string text(static_cast<std::size_t>(n), '\0');
  if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0)
    return std::nullopt;
  return text;
}

// Sets the body checksum of every record that lies inside /cairn/records to match its body.
// Returns whether a checksum changed.
bool match_record_checksums(hid_t file) {
  std::optional<std::string> records = read_small_bytes(file, "/cairn/records");
  if (!records || H5Lexists(file, "/cairn/record_offsets", H5P_DEFAULT) <= 0) return false;
  h5::Dataset ds(H5Dopen2(file, "/cairn/record_offsets", H5P_DEFAULT));
  h5::Dataspace space(ds.valid() ? H5Dget_space(ds.get()) : H5I_INVALID_HID);
  if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1) return false;
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 2 || n > 4096) return false;
  std::vector<int64_t> offsets(static_cast<std::size_t>(n));
  if (H5Dread(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data()) < 0)
    return false;
  bool changed = false;
  const auto size = static_cast<int64_t>(records->size());
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
    const int64_t begin = offsets[r], end = offsets[r + 1];
    if (begin < 0 || end > size || end - begin < 40) continue;
    const uint64_t sum =
        checksum_bytes(records->data() + begin + 40, static_cast<std::size_t>(end - begin - 40));
    for (int i = 0; i < 8; ++i) {
      const auto byte = static_cast<char>((sum >> (8 * i)) & 0xff);
      char& at = (*records)[static_cast<std::size_t>(begin + 32 + i)];
      changed = changed || at != byte;
      at = byte;
    }
  }
  if (!changed) return false;
  h5::Dataset out(H5Dopen2(file, "/cairn/records", H5P_DEFAULT));
  return out.valid() &&
         H5Dwrite(out.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, records->data()) >= 0;
}

// Rewrites the commit mark so that it matches the header (1.x: manifest) and, when there is one,
// the table (format 2.x) the file holds, and the records' checksums their bodies. Returns false
// when the file has no readable header or everything already matched (nothing new to try).
bool match_commit_mark(const std::string& path) {
  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!file.valid() || H5Lexists(file.get(), "/cairn", H5P_DEFAULT) <= 0) return false;
  const std::optional<std::string> text = read_small_bytes(file.get(), "/cairn/manifest");
  if (!text) return false;
  const bool records_changed = match_record_checksums(file.get());
  CommitMark mark{checksum_bytes(text->data(), text->size()), static_cast<int64_t>(text->size()),
                  0};
  if (const std::optional<std::string> table = read_small_bytes(file.get(), "/cairn/table")) {
    mark.table_bytes = static_cast<int64_t>(table->size());
    mark.table_checksum = checksum_bytes(table->data(), table->size());
  }
  const std::string value = encode_commit_mark(mark);
  if (H5Aexists(file.get(), "cairn_commit") > 0) {
    h5::Attribute old(H5Aopen(file.get(), "cairn_commit", H5P_DEFAULT));
    h5::Datatype old_type(old.valid() ? H5Aget_type(old.get()) : H5I_INVALID_HID);
    if (old_type.valid() && H5Tget_class(old_type.get()) == H5T_STRING &&
        H5Tis_variable_str(old_type.get()) == 0 && H5Tget_size(old_type.get()) == value.size()) {
      std::string current(value.size(), '\0');
      if (H5Aread(old.get(), old_type.get(), current.data()) >= 0 && current == value)
        return records_changed && file.close() >= 0;
    }
    old.reset();
    if (H5Adelete(file.get(), "cairn_commit") < 0) return false;
  }
  h5::Datatype str(H5Tcopy(H5T_C_S1));
  if (!str.valid() || H5Tset_size(str.get(), value.size()) < 0) return false;
  h5::Dataspace scalar(H5Screate(H5S_SCALAR));
  h5::Attribute attr(
      H5Acreate2(file.get(), "cairn_commit", str.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), str.get(), value.data()) < 0) return false;
  attr.reset();
  return file.close() >= 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  std::atexit(finalize);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // the harness's own HDF5 calls fail quietly
  std::string pattern = (std::filesystem::temp_directory_path() / "cairn-fuzz-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    std::perror("fuzz_container: mkdtemp");
    std::abort();
  }
  work_dir() = pattern;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = (work_dir() / "input.h5").string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
      std::perror("fuzz_container: cannot write the input file");
      std::abort();
    }
  }
  run_all(path);
  if (match_commit_mark(path)) run_all(path);
  return 0;
}
