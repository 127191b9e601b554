// SPDX-License-Identifier: Apache-2.0
// The read-ahead of a rank's packed region on restores at the saved job size (format 1.1's
// /cairn/packed_ranks): exact values with it on, off, and with chunks small enough that pieces
// straddle them, the chunks read after the restore planned its reads going straight into the
// variables; a damaged, missing or foreign index only costs the read-ahead; damaged packed bytes
// are still caught on every rank, in the ring's buffers and in place.
#include <gtest/gtest.h>
#include <hdf5.h>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "damage.hpp"
#include "storage/tensor_read.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::count_mismatches;
using testing::fill;
using testing::scratch_dir;
using testing::session;
using testing::zero;

// Many packed tensors of uneven sizes, shards of different sizes, and tensors with fewer rows
// than ranks (ranks past the rows own nothing of them):
// - kMixed: 60 tensors (~4 MiB), some replicated (each is written by one rank and read by all, so
//   from other ranks' regions), and a per-rank state blob;
// - kSharded: 120 sharded tensors (~17 MiB), so that every rank's region spans several 1 MiB
//   chunks even at 7 ranks, and everything a rank reads lies in its own region;
// - kOneRow: one row each: rank 0 holds all the packed bytes, the other regions are empty.
enum class Kind { kMixed, kSharded, kOneRow };

struct Model {
  std::shared_ptr<Module> module = std::make_shared<Module>();
  std::vector<std::shared_ptr<Variable>> vars;
  std::shared_ptr<State<std::string>> state;
};

Model make_model(const Session& s, Kind kind) {
  Model m;
  const int count = kind == Kind::kSharded ? 120 : 60;
  for (int i = 0; i < count; ++i) {
    const int64_t rows = kind == Kind::kOneRow ? 1 : 1 + (i * 37) % 190;
    const int64_t cols = 13 + (i % 5) * (kind == Kind::kSharded ? 120 : 50);
    const Layout layout =
        kind == Kind::kMixed && i % 7 == 3 ? Layout::replicated() : Layout::block(0);
    auto v =
        std::make_shared<Variable>(s, i % 2 ? DType::kF32 : DType::kF64, Shape{rows, cols}, layout);
    m.module->track("v" + std::to_string(i), v);
    m.vars.push_back(std::move(v));
  }
  if (kind == Kind::kMixed) {
    m.state = std::make_shared<State<std::string>>(StateScope::kPerRank, std::string());
    m.module->track("loader", m.state);
  }
  return m;
}

std::string state_value() {
  return std::string(3000 + 17 * session().rank(), static_cast<char>('a' + session().rank() % 26));
}

void fill_model(Model& m) {
  for (std::size_t i = 0; i < m.vars.size(); ++i) fill(*m.vars[i], static_cast<int64_t>(i));
  if (m.state) m.state->value() = state_value();
}

int64_t mismatches(const Model& m) {
  int64_t bad = 0;
  for (std::size_t i = 0; i < m.vars.size(); ++i)
    bad += count_mismatches(*m.vars[i], static_cast<int64_t>(i));
  if (m.state && m.state->value() != state_value()) ++bad;
  return session().comm().allreduce_sum(bad);
}

std::string save(const std::string& dir, Kind kind = Kind::kMixed) {
  Model m = make_model(session(), kind);
  fill_model(m);
  return Checkpoint(session(), {{"m", m.module}}).write(dir + "/c.h5");
}

// Restores `path` into a fresh model through a session with the given read-ahead; the number of
// wrong elements over all ranks. `served` gets this rank's packed bytes and how many of them came
// from the read-ahead.
int64_t restore_with(const std::string& path, int64_t read_ahead_bytes, Kind kind = Kind::kMixed,
                     detail::PackedReadStats* served = nullptr) {
  SessionOptions options;
  options.read_ahead_bytes = read_ahead_bytes;
  Session s(MPI_COMM_WORLD, options);
  Model m = make_model(s, kind);
  for (auto& v : m.vars) zero(*v);
  Checkpoint ckpt(s, {{"m", m.module}});
  ckpt.read(path).assert_consumed();
  if (served) *served = detail::last_packed_read_stats();
  return mismatches(m);
}

// Rank 0 rewrites /cairn/packed_ranks with plain HDF5: `edit` gets the dataset's file id.
template <class Edit>
void edit_index(const std::string& path, Edit edit) {
  if (session().rank() == 0) {
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    edit(file);
    H5Fclose(file);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(ReadAhead, RestoresExactValuesOnOffAndWithPiecesAcrossChunks) {
  const std::string dir = scratch_dir();
  const std::string mixed = save(dir + "/mixed");
  EXPECT_EQ(restore_with(mixed, SessionOptions{}.read_ahead_bytes), 0);
  EXPECT_EQ(restore_with(mixed, 0), 0);
  EXPECT_EQ(restore_with(mixed, int64_t{4} << 20), 0);

  // Everything a rank reads of the sharded model lies in its own region: the read-ahead serves all
  // of it but pieces across a chunk end (16 MiB chunks by default; 1 MiB with a 4 MiB budget, four
  // at a time, so that the helper also waits for the reader; or one at a time).
  const std::string sharded = save(dir + "/sharded", Kind::kSharded);
  detail::PackedReadStats on, off, small, one;
  EXPECT_EQ(restore_with(sharded, SessionOptions{}.read_ahead_bytes, Kind::kSharded, &on), 0);
  EXPECT_EQ(restore_with(sharded, 0, Kind::kSharded, &off), 0);
  EXPECT_EQ(restore_with(sharded, int64_t{4} << 20, Kind::kSharded, &small), 0);
  EXPECT_EQ(restore_with(sharded, 1, Kind::kSharded, &one), 0);
  const Comm& comm = session().comm();
  const int64_t bytes = comm.allreduce_sum(on.bytes);
  EXPECT_GT(bytes, int64_t{8} << 20);
  EXPECT_GE(comm.allreduce_sum(on.prefetched_bytes), bytes * 9 / 10);
  EXPECT_LE(on.prefetched_bytes, on.bytes);
  EXPECT_EQ(off.prefetched_bytes, 0);
  const int64_t small_served = comm.allreduce_sum(small.prefetched_bytes);
  EXPECT_GE(small_served, bytes * 3 / 4);
  EXPECT_LT(small_served, bytes) << "no piece crossed a 1 MiB chunk end";
  EXPECT_EQ(comm.allreduce_sum(one.prefetched_bytes), small_served);  // same chunks, one at a time
  // One chunk at a time, every chunk after the first is read once the reads are planned: straight
  // into the variables, all but the pieces across a chunk end.
  EXPECT_LE(one.direct_bytes, one.prefetched_bytes);
  EXPECT_GE(comm.allreduce_sum(one.direct_bytes), small_served / 2);
  EXPECT_EQ(comm.allreduce_sum(off.direct_bytes), 0);
}

TEST(ReadAhead, RestoringPartOfTheGraphSkipsUnneededChunks) {
  // Only the first and the last tensors are restored: the read-ahead's chunks in between hold
  // nothing this restore needs, more of them than its ring has buffers (1 MiB chunks, 4 at a time).
  const std::string path = save(scratch_dir(), Kind::kSharded);
  SessionOptions options;
  options.read_ahead_bytes = int64_t{4} << 20;
  Session s(MPI_COMM_WORLD, options);
  Model full = make_model(s, Kind::kSharded);
  auto part = std::make_shared<Module>();
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < full.vars.size(); ++i)
    if (i < 5 || i + 5 >= full.vars.size()) {
      zero(*full.vars[i]);
      part->track("v" + std::to_string(i), full.vars[i]);
      kept.push_back(i);
    }
  Checkpoint ckpt(s, {{"m", part}});
  ckpt.read(path).expect_partial();
  int64_t bad = 0;
  for (std::size_t i : kept) bad += count_mismatches(*full.vars[i], static_cast<int64_t>(i));
  EXPECT_EQ(session().comm().allreduce_sum(bad), 0);
  EXPECT_GT(session().comm().allreduce_sum(detail::last_packed_read_stats().prefetched_bytes), 0);
}

TEST(ReadAhead, RanksWithEmptyRegionsRestore) {
  const std::string path = save(scratch_dir(), Kind::kOneRow);
  detail::PackedReadStats served;
  EXPECT_EQ(restore_with(path, int64_t{4} << 20, Kind::kOneRow, &served), 0);
  if (session().rank() != 0) {
    EXPECT_EQ(served.bytes, 0);
  }
  EXPECT_EQ(served.prefetched_bytes, served.bytes);
}

TEST(ReadAhead, DamagedMissingOrForeignIndexOnlyLosesTheReadAhead) {
  const std::string dir = scratch_dir();
  const std::string path = save(dir);
  const int n = session().size();
  // Regions that lie outside the packed dataset, run backwards, or are absurd.
  edit_index(path, [n](hid_t file) {
    hid_t ds = H5Dopen2(file, "/cairn/packed_ranks", H5P_DEFAULT);
    std::vector<int64_t> bad(static_cast<std::size_t>(n) + 1);
    for (int r = 0; r <= n; ++r)
      bad[static_cast<std::size_t>(r)] = r % 2 ? -7 : (int64_t{1} << 60) - r;
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad.data());
    H5Dclose(ds);
  });
  detail::PackedReadStats served;
  EXPECT_EQ(restore_with(path, int64_t{4} << 20, Kind::kMixed, &served), 0);
  EXPECT_EQ(served.prefetched_bytes, 0);
  // Every region moved 3 bytes on (within the dataset): the read-ahead covers other bytes than the
  // rank's pieces; it serves the pieces it holds whole, and the rest are read the ordinary way.
  const std::string shifted_path = save(dir + "/shifted");
  edit_index(shifted_path, [n](hid_t file) {
    hid_t ds = H5Dopen2(file, "/cairn/packed_ranks", H5P_DEFAULT);
    std::vector<int64_t> bounds(static_cast<std::size_t>(n) + 1);
    H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, bounds.data());
    for (int r = 0; r < n; ++r)
      bounds[static_cast<std::size_t>(r)] =
          std::min(bounds[static_cast<std::size_t>(r)] + 3, bounds.back());
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, bounds.data());
    H5Dclose(ds);
  });
  EXPECT_EQ(restore_with(shifted_path, int64_t{4} << 20, Kind::kMixed, &served), 0);
  // An index for another job size (one rank more): not used.
  const std::string path_foreign = save(dir + "/foreign");
  edit_index(path_foreign, [n](hid_t file) {
    H5Ldelete(file, "/cairn/packed_ranks", H5P_DEFAULT);
    const hsize_t dims[1] = {static_cast<hsize_t>(n) + 2};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t ds = H5Dcreate2(file, "/cairn/packed_ranks", H5T_STD_I64LE, space, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int64_t> zeros(static_cast<std::size_t>(n) + 2, 0);
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(ds);
    H5Sclose(space);
  });
  EXPECT_EQ(restore_with(path_foreign, int64_t{4} << 20, Kind::kMixed, &served), 0);
  EXPECT_EQ(served.prefetched_bytes, 0);
  // No index at all, as in a format 1.0 file.
  edit_index(path_foreign, [](hid_t file) { H5Ldelete(file, "/cairn/packed_ranks", H5P_DEFAULT); });
  EXPECT_EQ(restore_with(path_foreign, int64_t{4} << 20, Kind::kMixed, &served), 0);
  EXPECT_EQ(served.prefetched_bytes, 0);
}

TEST(ReadAhead, FlippedByteInTheLastRanksRegionIsDetectedEverywhere) {
  // The last rank's own state value lies in its region, which its read-ahead serves.
  const std::string path = save(scratch_dir());
  if (session().rank() == 0)
    testing::flip_byte(
        path, testing::state_blob_offset(path, "m/loader/.ATTRIBUTES/STATE", session().size() - 1));
  MPI_Barrier(MPI_COMM_WORLD);
  std::string text;
  try {
    restore_with(path, int64_t{4} << 20);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
    text = e.what();
  }
  EXPECT_NE(text.find("checksum mismatch"), std::string::npos) << text;
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
}

TEST(ReadAhead, OneVariableUnderTwoSavedNamesGetsOneOfTheirValuesWhole) {
  // Saved as two variables, restored into one tracked under both names: both values are read
  // into it, in chunks read after the plan (one 1 MiB chunk at a time, behind ~17 MiB of others).
  // They must not be read straight into it, where one could land while the other is verified.
  const std::string dir = scratch_dir();
  std::string path;
  {
    Model m = make_model(session(), Kind::kSharded);
    fill_model(m);
    auto a = std::make_shared<Variable>(session(), DType::kF32, Shape{8, 16}, Layout::block(0));
    auto b = std::make_shared<Variable>(session(), DType::kF32, Shape{8, 16}, Layout::block(0));
    fill(*a, 1000);
    fill(*b, 2000);
    m.module->track("a", a);
    m.module->track("b", b);
    path = Checkpoint(session(), {{"m", m.module}}).write(dir + "/two.h5");
  }
  SessionOptions options;
  options.read_ahead_bytes = 1;
  Session s(MPI_COMM_WORLD, options);
  Model m = make_model(s, Kind::kSharded);
  for (auto& v : m.vars) zero(*v);
  auto one = std::make_shared<Variable>(s, DType::kF32, Shape{8, 16}, Layout::block(0));
  zero(*one);
  m.module->track("a", one);
  m.module->track("b", one);
  std::string error;
  try {
    Checkpoint(s, {{"m", m.module}}).read(path);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(error, "");
  EXPECT_EQ(mismatches(m), 0);
  EXPECT_TRUE(count_mismatches(*one, 1000) == 0 || count_mismatches(*one, 2000) == 0)
      << "rank " << session().rank() << " holds a mix of both values";
}

TEST(ReadAhead, FlippedByteInAPieceReadInPlaceIsDetectedEverywhere) {
  // The last element of the last tensor lies at the end of the last rank's region, in a chunk read
  // after the reads were planned (one 1 MiB chunk at a time), straight into the variable.
  const std::string path = save(scratch_dir(), Kind::kSharded);
  const std::string key = "m/v119/.ATTRIBUTES/VARIABLE_VALUE";
  if (session().rank() == 0) {
    const Shape shape{1 + (119 * 37) % 190, 13 + (119 % 5) * 120};
    testing::flip_byte(path, testing::tensor_element_offset(path, key, shape[0] * shape[1] - 1));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::string text;
  try {
    restore_with(path, 1, Kind::kSharded);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
    text = e.what();
  }
  EXPECT_NE(text.find("checksum mismatch"), std::string::npos) << text;
  EXPECT_NE(text.find(key), std::string::npos) << text;
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
}

}  // namespace
}  // namespace cairn
