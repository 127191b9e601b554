// SPDX-License-Identifier: Apache-2.0
// Damage is detected and named: flipped bytes in tensor data (datasets and packed), shape and dtype
// mismatches, files that are not checkpoints. Errors are the same on every rank.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "damage.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::session;

using testing::expect_same_error_everywhere;
using testing::fill;
using testing::flip_byte;
using testing::scratch_dir;

// Byte offset in the file of dataset `name` (contiguous layout), read with plain HDF5.
haddr_t dataset_offset(const std::string& path, const std::string& name) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  haddr_t off = H5Dget_offset(ds);
  H5Dclose(ds);
  H5Fclose(file);
  return off;
}

struct Saved {
  std::string path;
  std::shared_ptr<Module> model;
};

Saved save_model(const std::string& dir) {
  auto m = std::make_shared<Module>();
  auto big = Variable::create<float>(session(), {1 << 19}, Layout::block(0));    // 2 MiB: a dataset
  auto small = Variable::create<int32_t>(session(), {10, 3}, Layout::block(0));  // packed
  fill(*big, 1);
  fill(*small, 2);
  m->track("big", big);
  m->track("small", small);
  m->track("state",
           std::make_shared<State<std::string>>(StateScope::kPerRank, "iterator-position"));
  const std::string path = Checkpoint(session(), {{"m", m}}).write(dir + "/c.h5");
  return {path, m};
}

TEST(Integrity, FlippedByteInDatasetIsDetectedNamingKeyAndPiece) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  if (session().rank() == 0)
    flip_byte(saved.path,
              static_cast<std::streamoff>(
                  dataset_offset(saved.path, "/tensors/m/big/.ATTRIBUTES/VARIABLE_VALUE") + 4000));
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", saved.model}});
  expect_same_error_everywhere(
      [&] { ckpt.read(saved.path); }, ErrorCode::kCorrupt,
      {"checksum mismatch", "m/big/.ATTRIBUTES/VARIABLE_VALUE", saved.path});
}

TEST(Integrity, FlippedByteInPackedDataIsDetected) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  if (session().rank() == 0)
    flip_byte(saved.path, static_cast<std::streamoff>(dataset_offset(saved.path, "/cairn/packed")));
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", saved.model}});
  expect_same_error_everywhere([&] { ckpt.read(saved.path); }, ErrorCode::kCorrupt,
                               {"checksum mismatch"});
}

TEST(Integrity, FlippedByteInManifestIsDetected) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  if (session().rank() == 0)
    flip_byte(saved.path,
              static_cast<std::streamoff>(dataset_offset(saved.path, "/cairn/manifest") + 10));
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", saved.model}});
  expect_same_error_everywhere([&] { ckpt.read(saved.path); }, ErrorCode::kCorrupt,
                               {"manifest checksum mismatch"});
}

// Format 2.0's table and records carry checksums of their own: the commit mark's for the table,
// each record's header for its body. A record is read only by the ranks that need it; the
// verdict reaches every rank.
TEST(Integrity, FlippedByteInTableIsDetected) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  if (session().rank() == 0) flip_byte(saved.path, testing::table_offset(saved.path) + 20);
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", saved.model}});
  expect_same_error_everywhere([&] { ckpt.read(saved.path); }, ErrorCode::kCorrupt,
                               {"table checksum mismatch", saved.path});
}

TEST(Integrity, FlippedByteInTheLastRanksRecordIsDetected) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  const int last = session().size() - 1;
  if (session().rank() == 0) flip_byte(saved.path, testing::record_offset(saved.path, last) + 44);
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", saved.model}});
  expect_same_error_everywhere([&] { ckpt.read(saved.path); }, ErrorCode::kCorrupt,
                               {"record of rank " + std::to_string(last), "checksum", saved.path});
}

TEST(Integrity, ShapeAndDtypeMismatchNameTheKeyAndBothSides) {
  const std::string dir = scratch_dir();
  Saved saved = save_model(dir);
  {
    auto m = std::make_shared<Module>();
    m->track("big", Variable::create<float>(session(), {1 << 18}, Layout::block(0)));
    Checkpoint ckpt(session(), {{"m", m}});
    expect_same_error_everywhere(
        [&] { ckpt.read(saved.path); }, ErrorCode::kInvalidArgument,
        {"shape mismatch", "[262144]", "[524288]", "m/big/.ATTRIBUTES/VARIABLE_VALUE"});
  }
  {
    auto m = std::make_shared<Module>();
    m->track("small", Variable::create<float>(session(), {10, 3}, Layout::block(0)));
    Checkpoint ckpt(session(), {{"m", m}});
    expect_same_error_everywhere(
        [&] { ckpt.read(saved.path); }, ErrorCode::kInvalidArgument,
        {"dtype mismatch", "f32", "i32", "m/small/.ATTRIBUTES/VARIABLE_VALUE"});
  }
}

TEST(Integrity, MissingFileAndNonCheckpointFilesAreClearErrors) {
  const std::string dir = scratch_dir();
  Checkpoint ckpt(session(), {{"m", std::make_shared<Module>()}});
  expect_same_error_everywhere([&] { ckpt.read(dir + "/nope.h5"); }, ErrorCode::kNotFound,
                               {"does not exist", dir + "/nope.h5"});
  if (session().rank() == 0) std::ofstream(dir + "/text.h5") << "hello, not hdf5";
  if (session().rank() == 0) {
    hid_t f = H5Fcreate((dir + "/plain.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  expect_same_error_everywhere([&] { ckpt.read(dir + "/text.h5"); }, ErrorCode::kCorrupt,
                               {"cannot open as HDF5"});
  expect_same_error_everywhere([&] { ckpt.read(dir + "/plain.h5"); }, ErrorCode::kCorrupt,
                               {"commit mark is missing"});
}

TEST(Integrity, FailedSaveLeavesThePreviousCheckpointAndLatestIntact) {
  const std::string dir = scratch_dir();
  auto v = Variable::create<float>(session(), {100}, Layout::block(0));
  fill(*v, 3);
  Checkpoint ckpt(session(), {{"v", v}});
  const std::string first = ckpt.save(dir + "/ck");
  // A save whose layout is invalid fails on every rank before anything is written.
  auto bad = std::make_shared<Module>();
  ckpt.root().track("bad", bad);
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(session().size()));
  boxes[0] = {Box{{0}, {3}}};  // leaves [3, 5) uncovered
  EXPECT_THROW(bad->track("gap", std::make_shared<Variable>(session(), DType::kF32, Shape{5},
                                                            Layout::explicit_boxes(boxes))),
               Error);
  // A save whose directory cannot be created (a file is in the way) fails everywhere and changes
  // nothing; a merely missing directory is created.
  if (session().rank() == 0) std::ofstream(dir + "/blocker") << "a file, not a directory";
  MPI_Barrier(MPI_COMM_WORLD);
  expect_same_error_everywhere([&] { ckpt.write(dir + "/blocker/sub/x.h5"); }, ErrorCode::kIo,
                               {"cannot create the checkpoint directory"});
  Checkpoint elsewhere(session(), {{"v", v}});
  EXPECT_EQ(elsewhere.write(dir + "/new/sub/x.h5"), dir + "/new/sub/x.h5");
  EXPECT_EQ(ckpt.save_counter(), 1);
  EXPECT_EQ(latest_checkpoint(session(), dir), first);
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

// Blocks of at least 4 MiB are verified on a helper thread while the next block is read
// (storage/overlapped_checks): a 48 MiB sharded tensor (12-48 MiB per rank, read in 16 MiB blocks)
// and 120 replicated 64 KiB tensors (7.5 MiB of packed data every rank reads). The values arrive
// intact, and damage in a late block, found on that thread, still reaches every rank as the same
// error naming the key.
TEST(Integrity, LargeBlocksAreVerifiedWhileTheNextIsRead) {
  const std::string dir = scratch_dir();
  auto make = [] {
    auto m = std::make_shared<Module>();
    m->track("big", Variable::create<float>(session(), {int64_t{12} << 20}, Layout::block(0)));
    for (int i = 0; i < 120; ++i)
      m->track("r" + std::to_string(i),
               Variable::create<float>(session(), {16384}, Layout::replicated()));
    return m;
  };
  auto variables = [](Module& m) {
    std::vector<std::shared_ptr<Variable>> out;
    out.push_back(std::dynamic_pointer_cast<Variable>(m.child("big")));
    for (int i = 0; i < 120; ++i)
      out.push_back(std::dynamic_pointer_cast<Variable>(m.child("r" + std::to_string(i))));
    return out;
  };
  auto source = make();
  const auto saved_vars = variables(*source);
  for (std::size_t i = 0; i < saved_vars.size(); ++i)
    fill(*saved_vars[i], static_cast<int64_t>(i) + 10);
  const std::string path = Checkpoint(session(), {{"m", source}}).write(dir + "/large.h5");

  auto target = make();
  const auto restored = variables(*target);
  for (const auto& v : restored) testing::zero(*v);
  Checkpoint(session(), {{"m", target}}).read(path).assert_consumed();
  for (std::size_t i = 0; i < restored.size(); ++i)
    EXPECT_EQ(testing::global_mismatches(*restored[i], static_cast<int64_t>(i) + 10), 0)
        << "variable " << i;

  const std::string damaged_data = dir + "/damaged-data.h5",
                    damaged_packed = dir + "/damaged-packed.h5";
  if (session().rank() == 0) {
    std::filesystem::copy_file(path, damaged_data);
    std::filesystem::copy_file(path, damaged_packed);
    // Near the end of the tensor: the last block of the last rank's run.
    flip_byte(damaged_data,
              static_cast<std::streamoff>(
                  dataset_offset(damaged_data, "/tensors/m/big/.ATTRIBUTES/VARIABLE_VALUE") +
                  (int64_t{47} << 20)));
    flip_byte(damaged_packed,
              static_cast<std::streamoff>(dataset_offset(damaged_packed, "/cairn/packed") +
                                          (int64_t{6} << 20)));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint ckpt(session(), {{"m", make()}});
  expect_same_error_everywhere(
      [&] { ckpt.read(damaged_data); }, ErrorCode::kCorrupt,
      {"checksum mismatch", "m/big/.ATTRIBUTES/VARIABLE_VALUE", damaged_data});
  expect_same_error_everywhere(
      [&] { ckpt.read(damaged_packed); }, ErrorCode::kCorrupt,
      {"checksum mismatch", "/.ATTRIBUTES/VARIABLE_VALUE", damaged_packed});
}

}  // namespace
}  // namespace cairn
