// SPDX-License-Identifier: Apache-2.0
// What a save and a restore count without a collective of their own (the byte totals ride in the
// exchanges they make anyway), and the HDF5 file-access lists a communicator makes once and keeps
// (storage/mpio_access.cpp).
#include <gtest/gtest.h>

#include <hdf5.h>

#include <memory>
#include <mutex>

#include "cairn/cairn.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/mpio_access.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::file_access {
namespace {

using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

// Uneven shards in a dataset (1,031 rows), a packed tensor that ranks beyond 2 own nothing of,
// and a replicated one of three pieces' worth of small values.
struct Model {
  std::shared_ptr<Variable> big, tiny, rep;
  std::shared_ptr<Module> module = std::make_shared<Module>();
  explicit Model(const Session& s)
      : big(Variable::create<float>(s, {1031, 300}, Layout::block(0))),
        tiny(Variable::create<double>(s, {2, 5}, Layout::block(0))),
        rep(Variable::create<int32_t>(s, {7, 3}, Layout::replicated())) {
    module->track("big", big);
    module->track("tiny", tiny);
    module->track("rep", rep);
  }
};

constexpr int64_t kBigBytes = 1031 * 300 * 4, kTinyBytes = 2 * 5 * 8, kRepBytes = 7 * 3 * 4;

TEST(ByteCounts, ASaveCountsEveryElementOnceAndARestoreWhatEachRankHolds) {
  const std::string dir = scratch_dir();
  Model saved(session());
  fill(*saved.big, 1);
  fill(*saved.tiny, 2);
  fill(*saved.rep, 3);
  Checkpoint ckpt(session(), {{"model", saved.module}});
  ckpt.write(dir + "/counts.h5");
  // Every rank's share of the sharded tensors, and each replicated piece from one writer.
  EXPECT_EQ(ckpt.last_save().bytes, kBigBytes + kTinyBytes + kRepBytes);
  ckpt.write(dir + "/counts-again.h5");  // the plan reused: the same count
  EXPECT_TRUE(ckpt.last_save().plan_reused);
  EXPECT_EQ(ckpt.last_save().bytes, kBigBytes + kTinyBytes + kRepBytes);

  Model restored(session());
  Checkpoint target(session(), {{"model", restored.module}});
  target.read(dir + "/counts.h5").assert_consumed();
  // Every rank holds the whole replicated tensor.
  EXPECT_EQ(target.last_restore().bytes, kBigBytes + kTinyBytes + session().size() * kRepBytes);
  EXPECT_EQ(global_mismatches(*restored.big, 1), 0);
  EXPECT_EQ(global_mismatches(*restored.rep, 3), 0);
}

// Each kind is made once per communicator, and closed with it (HDF5 would otherwise close it only
// at MPI_Finalize, which no leak checker would notice).
TEST(FileAccess, EachKindIsMadeOnceAndClosedWithItsCommunicator) {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  hid_t write = H5I_INVALID_HID, read = H5I_INVALID_HID;
  {
    Comm comm(MPI_COMM_WORLD);
    EXPECT_FALSE(comm.io_cache());
    write = detail::mpio_file_access(comm, detail::MpioAccess::kWrite, {});
    EXPECT_EQ(detail::mpio_file_access(comm, detail::MpioAccess::kWrite, {}), write);
    read = detail::mpio_file_access(comm, detail::MpioAccess::kRead, {});
    EXPECT_NE(read, write);
    EXPECT_EQ(detail::mpio_file_access(comm, detail::MpioAccess::kRead, {}), read);
    EXPECT_EQ(H5Pget_driver(write), H5FD_MPIO);
    EXPECT_EQ(H5Pget_driver(read), H5FD_MPIO);
    // The writer's settings are on the write list only.
    hsize_t threshold = 0, alignment = 0;
    ASSERT_GE(H5Pget_alignment(write, &threshold, &alignment), 0);
    EXPECT_EQ(alignment, hsize_t{1} << 20);
    ASSERT_GE(H5Pget_alignment(read, &threshold, &alignment), 0);
    EXPECT_EQ(alignment, hsize_t{1});
    // A moved Comm takes its lists along.
    Comm moved(std::move(comm));
    EXPECT_EQ(detail::mpio_file_access(moved, detail::MpioAccess::kWrite, {}), write);
    EXPECT_GT(H5Iis_valid(write), 0);
  }
  EXPECT_EQ(H5Iis_valid(write), 0);
  EXPECT_EQ(H5Iis_valid(read), 0);
}

TEST(FileAccess, ACommunicatorKeepsItsListsAndAFreshOneMakesItsOwn) {
  const std::string dir = scratch_dir();
  auto own = std::make_unique<Session>(MPI_COMM_WORLD);
  EXPECT_FALSE(own->comm().io_cache());
  Model model(*own);
  fill(*model.big, 4);
  {
    Checkpoint ckpt(*own, {{"model", model.module}});
    ckpt.write(dir + "/a.h5");
    const void* lists = own->comm().io_cache().get();
    ASSERT_NE(lists, nullptr);
    ckpt.write(dir + "/b.h5");
    ckpt.read(dir + "/a.h5").assert_consumed();
    EXPECT_EQ(own->comm().io_cache().get(), lists);  // kept, not made again
    EXPECT_EQ(global_mismatches(*model.big, 4), 0);
  }
  // The lists go with the session's communicator; a new session makes and uses its own.
  model = Model(session());
  own.reset();
  auto next = std::make_unique<Session>(MPI_COMM_WORLD);
  Model again(*next);
  Checkpoint(*next, {{"model", again.module}}).read(dir + "/b.h5").assert_consumed();
  EXPECT_EQ(global_mismatches(*again.big, 4), 0);
}

}  // namespace
}  // namespace cairn::file_access
