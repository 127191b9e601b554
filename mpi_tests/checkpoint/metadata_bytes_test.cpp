// SPDX-License-Identifier: Apache-2.0
// SaveInfo::metadata_bytes_written and RestoreInfo::metadata_bytes_read count what the library
// actually wrote and took in. In format 2.0 each rank writes its record and its entries of the
// record and packed-region indexes, and rank 0 also the header, the table and the commit mark; a
// restoring rank takes in the commit mark, the header and the table, and the records of the
// writers whose pieces it restores (two index entries each). The sizes expected here are read
// back from the file with plain HDF5.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <memory>
#include <set>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::metadata_bytes {
namespace {

using testing::count_mismatches;
using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

constexpr int64_t kIndexEntryBytes = 8;

// Uneven shards in a dataset, a packed tensor that ranks beyond 2 own nothing of, a replicated
// packed one: the file has a header, a table, a record per rank, a packed region and its index.
struct Model {
  std::shared_ptr<Variable> big;
  std::shared_ptr<Variable> tiny;
  std::shared_ptr<Variable> rep;
  std::shared_ptr<Module> module = std::make_shared<Module>();
  explicit Model(const Session& s, Layout big_layout = Layout::block(0))
      : big(Variable::create<float>(s, {1031, 300}, big_layout)),
        tiny(Variable::create<double>(s, {2, 5}, Layout::block(0))),
        rep(Variable::create<float>(s, {5}, Layout::replicated())) {
    module->track("big", big);
    module->track("tiny", tiny);
    module->track("rep", rep);
  }
};

// The sizes of cairn's metadata in a file, read with plain HDF5.
struct Stored {
  int64_t mark = 0, header = 0, table = 0;
  std::vector<int64_t> records;  // each rank's record
  bool packed_index = false;
};

int64_t extent(hid_t file, const char* name) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  const int64_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  H5Dclose(ds);
  return n;
}

Stored stored(const std::string& path) {
  Stored s;
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(file, 0) << path;
  hid_t attr = H5Aopen(file, "cairn_commit", H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  std::string mark(H5Tget_size(type), '\0');
  H5Aread(attr, type, mark.data());
  H5Tclose(type);
  H5Aclose(attr);
  s.mark =
      static_cast<int64_t>(mark.find('\0') == std::string::npos ? mark.size() : mark.find('\0'));
  s.header = extent(file, "/cairn/manifest");
  s.table = extent(file, "/cairn/table");
  std::vector<int64_t> offsets(static_cast<std::size_t>(extent(file, "/cairn/record_offsets")));
  hid_t ds = H5Dopen2(file, "/cairn/record_offsets", H5P_DEFAULT);
  H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data());
  H5Dclose(ds);
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r)
    s.records.push_back(offsets[r + 1] - offsets[r]);
  s.packed_index = H5Lexists(file, "/cairn/packed_ranks", H5P_DEFAULT) > 0;
  H5Fclose(file);
  return s;
}

// What a restoring rank reads of the records of `writers`.
int64_t records_read(const Stored& s, const std::set<int>& writers) {
  int64_t bytes = 0;
  for (int w : writers) bytes += 2 * kIndexEntryBytes + s.records[static_cast<std::size_t>(w)];
  return bytes;
}

// The writers of a block(0) tensor of `rows` rows saved on `saved` ranks whose rows intersect
// those a reader `reader` of `readers` ranks restores.
void add_row_writers(std::set<int>& writers, int64_t rows, int saved, int readers, int reader) {
  const auto [begin, end] = block_range(rows, readers, reader);
  for (int w = 0; w < saved; ++w) {
    const auto [wb, we] = block_range(rows, saved, w);
    if (std::max(begin, wb) < std::min(end, we)) writers.insert(w);
  }
}

TEST(MetadataBytes, CountTheHeaderTableRecordsIndexesAndCommitMarkEachRankWroteAndRead) {
  const std::string dir = scratch_dir();
  const std::string path = dir + "/meta.h5";
  const int n = session().size();
  const int me = session().rank();
  Model source(session());
  fill(*source.big, 1);
  fill(*source.tiny, 2);
  fill(*source.rep, 3);
  Checkpoint saver(session(), {{"model", source.module}});
  saver.write(path);
  const Stored s = stored(path);
  ASSERT_EQ(static_cast<int>(s.records.size()), n);
  ASSERT_TRUE(s.packed_index);
  // Every rank writes its record and its element of both indexes (the last rank also their
  // ends); rank 0 also the header, the table and the commit mark.
  const int64_t entries = (me == n - 1 ? 2 : 1) * kIndexEntryBytes;
  EXPECT_EQ(saver.last_save().metadata_bytes_written,
            s.records[static_cast<std::size_t>(me)] + 2 * entries +
                (me == 0 ? s.header + s.table + s.mark : 0));
  // A record is its 40-byte header and a 24-byte entry per piece (no per-rank state here): at
  // least one piece of big, none of the replicated rep.
  EXPECT_EQ((s.records[static_cast<std::size_t>(me)] - 40) % 24, 0);
  EXPECT_GE(s.records[static_cast<std::size_t>(me)], 40 + 24);
  const int64_t global = s.mark + s.header + s.table;

  // Without read-ahead, at the saved job size and layouts, every rank takes in the global part
  // and its own record only.
  SessionOptions no_read_ahead;
  no_read_ahead.read_ahead_bytes = 0;
  {
    Session plain(MPI_COMM_WORLD, no_read_ahead);
    Model target(plain);
    Checkpoint reader(plain, {{"model", target.module}});
    reader.read(path).assert_consumed();
    EXPECT_EQ(global_mismatches(*target.big, 1), 0);
    const RestoreInfo& info = reader.last_restore();
    EXPECT_EQ(info.path, path);
    EXPECT_EQ(info.bytes, (1031 * 300 + 5 * n) * 4 + 2 * 5 * 8);
    EXPECT_GT(info.seconds, 0);
    EXPECT_EQ(info.metadata_bytes_read, global + records_read(s, {me}));
  }

  // At the saved job size each rank reads its own record as the file is opened, before it knows
  // what it restores: here only the replicated rep, which needs no record, yet the record is read
  // (and counted) once.
  {
    Session plain(MPI_COMM_WORLD, no_read_ahead);
    Model target(plain);
    auto only_rep = std::make_shared<Module>();
    only_rep->track("rep", target.rep);
    Checkpoint reader(plain, {{"model", only_rep}});
    reader.read(path).expect_partial();
    EXPECT_EQ(global_mismatches(*target.rep, 3), 0);
    EXPECT_EQ(reader.last_restore().metadata_bytes_read, global + records_read(s, {me}));
  }

  // With read-ahead at the saved job size, each rank also reads its two entries of the index.
  {
    Model target(session());
    Checkpoint reader(session(), {{"model", target.module}});
    reader.read(path).assert_consumed();
    EXPECT_EQ(reader.last_restore().metadata_bytes_read,
              global + records_read(s, {me}) + 2 * kIndexEntryBytes);
  }

  // Onto another layout (columns instead of rows), each rank needs every writer's rows of big.
  {
    Session plain(MPI_COMM_WORLD, no_read_ahead);
    Model target(plain, Layout::block(1));
    Checkpoint reader(plain, {{"model", target.module}});
    reader.read(path).assert_consumed();
    EXPECT_EQ(global_mismatches(*target.big, 1), 0);
    std::set<int> all;
    for (int w = 0; w < n; ++w) all.insert(w);
    EXPECT_EQ(reader.last_restore().metadata_bytes_read, global + records_read(s, all));
  }

  // On fewer ranks (no read-ahead: the regions do not map), each reads the records of the writers
  // whose rows overlap its own.
  if (n > 1) {
    MPI_Comm fewer = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, me < n - 1 ? 0 : MPI_UNDEFINED, me, &fewer);
    if (fewer != MPI_COMM_NULL) {
      {
        Session small(fewer);
        Model target(small);
        Checkpoint reader(small, {{"model", target.module}});
        reader.read(path).assert_consumed();
        // global_mismatches would sum over the whole job; this restore is the sub-job's.
        EXPECT_EQ(small.comm().allreduce_sum(count_mismatches(*target.big, 1)), 0);
        std::set<int> needed;
        add_row_writers(needed, 1031, n, n - 1, me);
        add_row_writers(needed, 2, n, n - 1, me);
        EXPECT_EQ(reader.last_restore().metadata_bytes_read, global + records_read(s, needed));
      }
      MPI_Comm_free(&fewer);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

// The property format 2.0 exists for: at the same job size and layouts a rank reads one record
// whose size depends on its own pieces, and the table does not depend on the rank count. The same
// model (every rank one packed piece of each of 20 block tensors) is saved and restored by jobs
// of 1 to 4 ranks, carved out of this one.
TEST(MetadataBytes, WhatARankReadsDoesNotGrowWithTheRankCount) {
  constexpr int kTensors = 20;
  const std::string dir = scratch_dir();
  const int n = session().size();
  const int me = session().rank();
  std::vector<int64_t> tables;
  for (int k = 1; k <= std::min(n, 4); ++k) {
    MPI_Comm sub = MPI_COMM_NULL;
    const int groups = n / k;
    MPI_Comm_split(MPI_COMM_WORLD, me < groups * k ? me / k : MPI_UNDEFINED, me, &sub);
    int64_t table = 0, records = 0;
    if (sub != MPI_COMM_NULL) {
      SessionOptions options;
      options.read_ahead_bytes = 0;
      {
        Session job(sub, options);
        const std::string path =
            dir + "/k" + std::to_string(k) + "-" + std::to_string(me / k) + ".h5";
        auto make = [&] {
          auto m = std::make_shared<Module>();
          for (int i = 0; i < kTensors; ++i)
            m->track("t" + std::to_string(i),
                     Variable::create<float>(job, {8, 6}, Layout::block(0)));
          return m;
        };
        auto saved = make();
        Checkpoint(job, {{"m", saved}}).write(path);
        auto target = make();
        Checkpoint reader(job, {{"m", target}});
        reader.read(path).assert_consumed();
        const Stored s = stored(path);
        table = s.table;
        records = reader.last_restore().metadata_bytes_read - s.mark - s.header - s.table;
        EXPECT_EQ(s.records[static_cast<std::size_t>(job.rank())], 40 + 24 * kTensors) << k;
      }
      MPI_Comm_free(&sub);
    }
    // Rank 0 is in a job of every size; the ranks left out contribute 0.
    tables.push_back(session().comm().allreduce_max(table));
    if (records > 0) {
      EXPECT_EQ(records, 2 * kIndexEntryBytes + 40 + 24 * kTensors) << "job of " << k << " ranks";
    }
  }
  for (std::size_t i = 1; i < tables.size(); ++i)
    EXPECT_EQ(tables[i], tables[0]) << "table of a job of " << i + 1 << " ranks";
}

// More tensors make a larger table and records, and the counters follow them exactly.
TEST(MetadataBytes, GrowWithTheTable) {
  const std::string dir = scratch_dir();
  const int me = session().rank();
  Model small(session());
  Checkpoint a(session(), {{"model", small.module}});
  a.write(dir + "/small.h5");
  Model large(session());
  for (int i = 0; i < 20; ++i)
    large.module->track("extra" + std::to_string(i),
                        Variable::create<float>(session(), {7, 3}, Layout::block(0)));
  Checkpoint b(session(), {{"model", large.module}});
  b.write(dir + "/large.h5");
  const Stored s = stored(dir + "/small.h5");
  const Stored l = stored(dir + "/large.h5");
  // 20 more tensors: 20 more nodes, edges and tensor elements and their dims at least.
  EXPECT_GE(l.table - s.table, 20 * (16 + 16 + 24 + 8 * 3));
  EXPECT_EQ(b.last_save().metadata_bytes_written - a.last_save().metadata_bytes_written,
            l.records[static_cast<std::size_t>(me)] - s.records[static_cast<std::size_t>(me)] +
                (me == 0 ? l.mark + l.header + l.table - s.mark - s.header - s.table : 0));
  a.read(dir + "/small.h5").assert_consumed();
  b.read(dir + "/large.h5").assert_consumed();
  EXPECT_EQ(b.last_restore().metadata_bytes_read - a.last_restore().metadata_bytes_read,
            l.mark + l.header + l.table - s.mark - s.header - s.table +
                l.records[static_cast<std::size_t>(me)] - s.records[static_cast<std::size_t>(me)]);
}

}  // namespace
}  // namespace cairn::metadata_bytes
