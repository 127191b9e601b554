// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: opening a container file the ways cairn does. The input bytes are written to
// a temporary file, which is then
//   1. checked by `cairn verify`'s library function (local, POSIX driver, bounded reads);
//   2. opened with CheckpointReader (local, POSIX driver): every tensor of at most 1 MiB and every
//      state value is loaded, checksums verified;
//   3. restored into the model of fuzz_model.hpp with Checkpoint::read on a one-rank session over
//      MPI_COMM_SELF: the collective path of restore, through MPI-IO.
// Each must succeed or throw cairn::Error. The manifest is bound to the commit mark by its XXH3,
// so almost every mutation of the manifest would stop at the checksum; when the file is otherwise
// readable, a second round rewrites the commit mark to match the (mutated) manifest and runs the
// three readers again, so that fuzzed manifests reach the decoder, validation and the reads.
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
#include <sstream>
#include <string>

#include "cairn/cairn.hpp"
#include "cairn/inspect/verify.hpp"
#include "fuzz_model.hpp"
#include "storage/checksum.hpp"
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
    const Manifest m = decode_manifest(reader.manifest_json(), path);
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

// Rewrites the commit mark so that it matches the manifest the file holds. Returns false when the
// file has no readable manifest or the mark already matched (nothing new to try).
bool match_commit_mark(const std::string& path) {
  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!file.valid() || H5Lexists(file.get(), "/cairn", H5P_DEFAULT) <= 0 ||
      H5Lexists(file.get(), "/cairn/manifest", H5P_DEFAULT) <= 0)
    return false;
  h5::Dataset ds(H5Dopen2(file.get(), "/cairn/manifest", H5P_DEFAULT));
  if (!ds.valid()) return false;
  h5::Dataspace space(H5Dget_space(ds.get()));
  h5::Datatype type(H5Dget_type(ds.get()));
  if (!space.valid() || !type.valid() || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Tget_size(type.get()) != 1 || H5Sget_simple_extent_ndims(space.get()) != 1)
    return false;
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > kMaxFixupManifestBytes) return false;
  std::string text(static_cast<std::size_t>(n), '\0');
  if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0)
    return false;
  CommitMark mark{checksum_bytes(text.data(), text.size()), n, 0};
  const std::string value = encode_commit_mark(mark);
  if (H5Aexists(file.get(), "cairn_commit") > 0) {
    h5::Attribute old(H5Aopen(file.get(), "cairn_commit", H5P_DEFAULT));
    h5::Datatype old_type(old.valid() ? H5Aget_type(old.get()) : H5I_INVALID_HID);
    if (old_type.valid() && H5Tget_class(old_type.get()) == H5T_STRING &&
        H5Tis_variable_str(old_type.get()) == 0 && H5Tget_size(old_type.get()) == value.size()) {
      std::string current(value.size(), '\0');
      if (H5Aread(old.get(), old_type.get(), current.data()) >= 0 && current == value) return false;
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
  ds.reset();
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
