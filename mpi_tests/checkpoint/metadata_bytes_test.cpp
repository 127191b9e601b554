// SPDX-License-Identifier: Apache-2.0
// SaveInfo::metadata_bytes_written and RestoreInfo::metadata_bytes_read count what the library
// actually wrote and took in: in format 1.1 rank 0 writes the manifest, the packed-region index
// and the commit mark; every rank takes in the commit mark and the whole manifest, whatever the
// job size, plus its entries of the index when it reads ahead.
#include <gtest/gtest.h>

#include <memory>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::count_mismatches;
using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

constexpr int64_t kIndexEntryBytes = 8;

// Uneven shards in a dataset, a packed tensor that ranks beyond 2 own nothing of, a replicated
// packed one: the file has a manifest, a packed region and its index.
struct Model {
  std::shared_ptr<Variable> big;
  std::shared_ptr<Variable> tiny;
  std::shared_ptr<Variable> rep;
  std::shared_ptr<Module> module = std::make_shared<Module>();
  explicit Model(const Session& s)
      : big(Variable::create<float>(s, {1031, 300}, Layout::block(0))),
        tiny(Variable::create<double>(s, {2, 5}, Layout::block(0))),
        rep(Variable::create<float>(s, {5}, Layout::replicated())) {
    module->track("big", big);
    module->track("tiny", tiny);
    module->track("rep", rep);
  }
};

// min and max over the session's ranks.
std::pair<int64_t, int64_t> spread(const Session& s, int64_t value) {
  return {-s.comm().allreduce_max(-value), s.comm().allreduce_max(value)};
}

TEST(MetadataBytes, CountTheManifestIndexAndCommitMarkEachRankWroteAndRead) {
  const std::string dir = scratch_dir();
  const std::string path = dir + "/meta.h5";
  const int n = session().size();
  Model source(session());
  fill(*source.big, 1);
  fill(*source.tiny, 2);
  fill(*source.rep, 3);
  Checkpoint saver(session(), {{"model", source.module}});
  saver.write(path);
  const int64_t manifest = static_cast<int64_t>(CheckpointReader(path).manifest_json().size());
  const int64_t index = (n + 1) * kIndexEntryBytes;
  const int64_t written = saver.last_save().metadata_bytes_written;
  // Only rank 0 writes metadata; the commit mark (a short JSON line) is what exceeds the manifest
  // and the index.
  if (session().rank() == 0) {
    EXPECT_GT(written - manifest - index, 0);
    EXPECT_LT(written - manifest - index, 256);
  } else {
    EXPECT_EQ(written, 0);
  }
  const int64_t mark_and_manifest = session().comm().allreduce_max(written) - index;

  // Without read-ahead every rank takes in exactly the mark and the manifest, rank 0 from the
  // file and the others from rank 0.
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
    EXPECT_EQ(spread(plain, info.metadata_bytes_read),
              std::make_pair(mark_and_manifest, mark_and_manifest));
  }

  // With read-ahead at the saved job size, each rank also reads its two entries of the index.
  {
    Model target(session());
    Checkpoint reader(session(), {{"model", target.module}});
    reader.read(path).assert_consumed();
    EXPECT_EQ(spread(session(), reader.last_restore().metadata_bytes_read),
              std::make_pair(mark_and_manifest + 2 * kIndexEntryBytes,
                             mark_and_manifest + 2 * kIndexEntryBytes));
  }

  // On fewer ranks (no read-ahead: the regions do not map), each still takes in all of it.
  if (n > 1) {
    MPI_Comm fewer = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, session().rank() < n - 1 ? 0 : MPI_UNDEFINED, session().rank(),
                   &fewer);
    if (fewer != MPI_COMM_NULL) {
      {
        Session small(fewer);
        Model target(small);
        Checkpoint reader(small, {{"model", target.module}});
        reader.read(path).assert_consumed();
        // global_mismatches would sum over the whole job; this restore is the sub-job's.
        EXPECT_EQ(small.comm().allreduce_sum(count_mismatches(*target.big, 1)), 0);
        EXPECT_EQ(spread(small, reader.last_restore().metadata_bytes_read),
                  std::make_pair(mark_and_manifest, mark_and_manifest));
      }
      MPI_Comm_free(&fewer);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

TEST(MetadataBytes, GrowWithTheManifest) {
  // A graph with more tensors has a longer manifest, and the counters follow it.
  const std::string dir = scratch_dir();
  Model small(session());
  Checkpoint a(session(), {{"model", small.module}});
  a.write(dir + "/small.h5");
  Model large(session());
  for (int i = 0; i < 20; ++i)
    large.module->track("extra" + std::to_string(i),
                        Variable::create<float>(session(), {7, 3}, Layout::block(0)));
  Checkpoint b(session(), {{"model", large.module}});
  b.write(dir + "/large.h5");
  const int64_t growth =
      static_cast<int64_t>(CheckpointReader(dir + "/large.h5").manifest_json().size()) -
      static_cast<int64_t>(CheckpointReader(dir + "/small.h5").manifest_json().size());
  ASSERT_GT(growth, 0);
  if (session().rank() == 0) {
    // The commit marks may differ by a digit or two (sizes, times), not by the manifest's growth.
    const int64_t delta =
        b.last_save().metadata_bytes_written - a.last_save().metadata_bytes_written;
    EXPECT_GE(delta, growth - 8);
    EXPECT_LE(delta, growth + 8);
  }
  a.read(dir + "/small.h5").assert_consumed();
  b.read(dir + "/large.h5").assert_consumed();
  const int64_t read_delta =
      b.last_restore().metadata_bytes_read - a.last_restore().metadata_bytes_read;
  EXPECT_GE(read_delta, growth - 8);
  EXPECT_LE(read_delta, growth + 8);
}

}  // namespace
}  // namespace cairn
