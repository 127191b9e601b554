// SPDX-License-Identifier: Apache-2.0
// Damaged and foreign files through the real restore path (Checkpoint::read, collective over the
// job): flipped bytes in per-rank opaque state, a crafted state archive that passes its checksum,
// truncation at 16 offsets from the superblock to the end, files that are not HDF5, and HDF5 files
// that are not cairn checkpoints. Every case must be a cairn::Error naming the checkpoint, the
// same on every rank, in bounded time and memory, and must leave the live objects untouched.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "damage.hpp"
#include "hostile_support.hpp"
#include "storage/checksum.hpp"
#include "storage/h5_handle.hpp"
#include "support/test_support.hpp"

namespace cairn::hostile {
namespace {

struct Reference {
  std::string dir, path;
};

Reference make_reference() {
  const std::string dir = testing::scratch_dir();
  const std::string path = case_path(dir, "reference");
  save_reference(path);
  return {dir, path};
}

// Rank 0 prepares a case file from the reference; every rank then has it.
template <class Prepare>
std::string prepare(const Reference& ref, const std::string& name, Prepare&& prepare_file) {
  const std::string path = case_path(ref.dir, name);
  if (session().rank() == 0) {
    std::filesystem::copy_file(ref.path, path, std::filesystem::copy_options::overwrite_existing);
    prepare_file(path);
  }
  session().comm().barrier();
  return path;
}

// `untouched`: the failure comes before any value is read, so the live objects keep their values.
// Damage found while reading (a checksum) can come after other values were restored.
void expect_restore_fails(const std::string& name, const std::string& path,
                          const std::vector<ErrorCode>& codes, std::vector<std::string> needles,
                          bool untouched = true) {
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  needles.push_back(path);
  const Outcome out = expect_clear_error(
      name, [&] { ckpt.read(path); }, codes, needles, &model);
  if (untouched) {
    EXPECT_EQ(out.changed, 0) << name << ": a failed restore changed live values";
  }
}

TEST(DamagedFiles, FlippedByteInEachRanksOpaqueStateIsACorruptErrorNamingKeyAndRank) {
  const Reference ref = make_reference();
  for (int r = 0; r < session().size(); ++r) {
    const std::string path =
        prepare(ref, "state-flip-" + std::to_string(r), [&](const std::string& p) {
          testing::flip_byte(p, testing::state_blob_offset(p, kLoaderKey, r) + 3);
        });
    expect_restore_fails("flipped byte in the per-rank state of rank " + std::to_string(r), path,
                         {ErrorCode::kCorrupt},
                         {"checksum mismatch", kLoaderKey, "rank " + std::to_string(r) + " value"},
                         /*untouched=*/false);
  }
}

TEST(DamagedFiles, CraftedStateArchiveWithAValidChecksumIsASerializationError) {
  const Reference ref = make_reference();
  const int last = session().size() - 1;
  const std::string path = prepare(ref, "state-crafted", [&](const std::string& p) {
    // A Boost archive of a vector starts with its element count: claim 2^64 - 1 elements.
    const int64_t offset = testing::state_blob_offset(p, kLoaderKey, last);
    write_file_bytes(p, offset, std::string(8, '\xff'));
    // The last rank's record holds the value's checksum (its only per-rank state).
    Metadata m = read_metadata(p);
    RecordBlob& blob = m.records.back().blobs.at(0);
    const std::string bytes = read_file_bytes(p, offset, blob.bytes);
    blob.checksum = checksum_bytes(bytes.data(), bytes.size());
    write_metadata(p, m);
  });
  Model model = blank_model();
  Checkpoint ckpt = model.checkpoint();
  // Values read before the state may already be in place (see docs/design.md, "Validation before
  // reading"): only the error is checked here.
  expect_clear_error(
      "crafted per-rank state archive (valid checksum, absurd element count)",
      [&] { ckpt.read(path); }, {ErrorCode::kSerialization},
      {"cannot deserialize opaque state", kLoaderKey, path}, &model);
}

TEST(DamagedFiles, TruncationAtSixteenOffsetsIsAClearError) {
  const Reference ref = make_reference();
  std::set<int64_t> offsets;
  int64_t size = 0, manifest = 0, packed = 0, data = 0;
  if (session().rank() == 0) {
    size = static_cast<int64_t>(std::filesystem::file_size(ref.path));
    manifest = testing::manifest_offset(ref.path);
    packed = testing::state_blob_offset(ref.path, kLoaderKey, 0);
    data = testing::tensor_element_offset(ref.path, kWKey, 40);
  }
  size = session().comm().allreduce_max(size);
  manifest = session().comm().allreduce_max(manifest);
  packed = session().comm().allreduce_max(packed);
  data = session().comm().allreduce_max(data);
  // Inside the superblock, the root group's headers, the tensor data, the packed data, the
  // manifest, and spread over the rest of the file up to one byte short.
  for (int64_t o : {int64_t{0}, int64_t{1}, int64_t{8}, int64_t{30}, int64_t{200}, data, packed,
                    manifest + 1, manifest + 100, size - 1})
    offsets.insert(o);
  for (int k = 1; offsets.size() < 16; ++k) offsets.insert(size * k / 7);
  ASSERT_EQ(offsets.size(), 16u);
  for (int64_t cut : offsets) {
    ASSERT_LT(cut, size);
    const std::string name = "truncated-" + std::to_string(cut);
    const std::string path =
        prepare(ref, name, [&](const std::string& p) { testing::truncate_file(p, cut); });
    expect_restore_fails(
        "truncated to " + std::to_string(cut) + " of " + std::to_string(size) + " bytes", path,
        {ErrorCode::kCorrupt, ErrorCode::kIo}, {});
  }
}

TEST(DamagedFiles, FilesThatAreNotHdf5AreACorruptError) {
  const std::string dir = testing::scratch_dir();
  struct Foreign {
    std::string name, bytes;
  };
  std::mt19937_64 random(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  const std::vector<Foreign> files = {
      {"empty", ""},
      {"text", "step=1200 loss=0.31\n"},
      {"random", noise},
      {"hdf5-signature-then-noise", std::string("\x89HDF\r\n\x1a\n", 8) + noise},
  };
  for (const Foreign& f : files) {
    const std::string path = case_path(dir, f.name);
    if (session().rank() == 0) std::ofstream(path, std::ios::binary) << f.bytes;
    session().comm().barrier();
    expect_restore_fails("not HDF5: " + f.name, path, {ErrorCode::kCorrupt},
                         {"cannot open as HDF5"});
  }
  const std::string directory = case_path(dir, "a-directory");
  if (session().rank() == 0) std::filesystem::create_directories(directory);
  session().comm().barrier();
  expect_restore_fails("a directory named like a checkpoint", directory,
                       {ErrorCode::kInvalidArgument}, {"is a directory"});
}

// An HDF5 file written with the HDF5 API, with a dataset of its own and optional root attributes.
void make_foreign_hdf5(const std::string& path, const std::function<void(hid_t)>& decorate) {
  h5::File file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  const hsize_t n = 100;
  h5::Dataspace space(H5Screate_simple(1, &n, nullptr));
  h5::Dataset ds(H5Dcreate2(file.get(), "/weights", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(ds.valid());
  decorate(file.get());
}

void add_int_attribute(hid_t file, const char* name) {
  h5::Dataspace scalar(H5Screate(H5S_SCALAR));
  h5::Attribute attr(H5Acreate2(file, name, H5T_STD_I32LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
  const int32_t value = 7;
  H5Awrite(attr.get(), H5T_NATIVE_INT32, &value);
}

TEST(DamagedFiles, Hdf5FilesThatAreNotCheckpointsAreACorruptError) {
  const std::string dir = testing::scratch_dir();
  struct Case {
    std::string name;
    std::function<void(hid_t)> decorate;
    std::string needle;
  };
  const std::string mark =
      R"({"committed_unix":1,"manifest_bytes":10,"manifest_xxh3":"0000000000000000"})";
  const std::vector<Case> cases = {
      {"plain HDF5 file", [](hid_t) {}, "commit mark is missing"},
      {"commit mark but no manifest", [&](hid_t f) { H5Fflush(f, H5F_SCOPE_GLOBAL); },
       "dataset is missing"},
      {"commit mark is an integer", [](hid_t f) { add_int_attribute(f, "cairn_commit"); },
       "not a fixed-length string"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = case_path(dir, "foreign-" + std::to_string(i));
    if (session().rank() == 0) {
      make_foreign_hdf5(path, cases[i].decorate);
      if (i == 1) write_commit_mark(path, mark);
    }
    session().comm().barrier();
    expect_restore_fails("HDF5, not a checkpoint: " + cases[i].name, path, {ErrorCode::kCorrupt},
                         {cases[i].needle});
  }
}

TEST(DamagedFiles, HostileCommitMarksAreACorruptError) {
  const Reference ref = make_reference();
  struct Case {
    std::string name, mark, needle;
  };
  const std::vector<Case> cases = {
      {"commit mark is not JSON", "committed, trust me", "malformed commit mark"},
      {"commit mark claims a 1 TiB manifest",
       R"({"committed_unix":1,"manifest_bytes":1099511627776,"manifest_xxh3":"0000000000000000"})",
       "commit mark gives an absurd size for /cairn/manifest"},
      {"commit mark claims a negative manifest size",
       R"({"committed_unix":1,"manifest_bytes":-5,"manifest_xxh3":"0000000000000000"})",
       "commit mark gives an absurd size for /cairn/manifest"},
      {"commit mark's size differs from the manifest's",
       R"({"committed_unix":1,"manifest_bytes":12,"manifest_xxh3":"0000000000000000"})",
       "/cairn/manifest size differs from the commit mark"},
      {"commit mark's checksum is not hex",
       R"({"committed_unix":1,"manifest_bytes":12,"manifest_xxh3":"not-a-checksum!!"})",
       "bad checksum"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = prepare(ref, "mark-" + std::to_string(i), [&](const std::string& p) {
      write_commit_mark(p, cases[i].mark);
    });
    expect_restore_fails(cases[i].name, path, {ErrorCode::kCorrupt}, {cases[i].needle});
  }
}

// Datasets that declare far more than the file stores: before the reader checked the storage, the
// manifest case allocated and filled 2 GiB per rank, and the packed case sized a read window of
// 64 GiB from the manifest's claim.
TEST(DamagedFiles, DatasetsDeclaringMoreThanTheyStoreAreACorruptError) {
  const Reference ref = make_reference();
  const int64_t manifest_bytes = int64_t{1} << 31;
  const std::string manifest = prepare(ref, "unwritten-manifest", [&](const std::string& p) {
    replace_with_unwritten_dataset(p, "/cairn/manifest", manifest_bytes);
    write_commit_mark(p, R"({"committed_unix":1,"manifest_bytes":)" +
                             std::to_string(manifest_bytes) +
                             R"(,"manifest_xxh3":"0000000000000000"})");
  });
  expect_restore_fails("manifest dataset declares 2 GiB and stores nothing", manifest,
                       {ErrorCode::kCorrupt}, {"dataset stores 0 of the 2147483648 bytes"});
  const int64_t packed_bytes = int64_t{1} << 40;
  const std::string packed = prepare(ref, "unwritten-packed", [&](const std::string& p) {
    Metadata m = read_metadata(p);
    m.header.packed_bytes = packed_bytes;
    for (RankRecord& r : m.records)
      for (RecordBlob& b : r.blobs) b.bytes = int64_t{1} << 36;
    for (TableBlob& b : m.table.global_blobs) b.bytes = int64_t{1} << 36;
    write_metadata(p, m);
    replace_with_unwritten_dataset(p, "/cairn/packed", packed_bytes);
  });
  expect_restore_fails("packed dataset declares 1 TiB, a state value claims 64 GiB", packed,
                       {ErrorCode::kCorrupt},
                       {"dataset stores 0 of the 1099511627776 bytes", "/cairn/packed"});
}

}  // namespace
}  // namespace cairn::hostile
