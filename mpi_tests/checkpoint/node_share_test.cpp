// SPDX-License-Identifier: Apache-2.0
// SessionOptions::replicated_reads. With kOncePerNode, values that several ranks of a node need are
// read from the file once on the node and shared over MPI: the node's file bytes equal one copy,
// the reading is spread over the node's ranks. With kEveryRank (the default), every rank reads
// what it needs. Both: values bit-identical, a damaged piece the same error on every rank,
// deferred restores of objects attached later, ranks that own nothing.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "damage.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::expect_same_error_everywhere;
using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

// The ranks of the calling rank's node (a communicator the test owns).
class NodeComm {
 public:
  NodeComm() {
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &comm_);
  }
  ~NodeComm() { MPI_Comm_free(&comm_); }
  NodeComm(const NodeComm&) = delete;
  NodeComm& operator=(const NodeComm&) = delete;
  int size() const {
    int n = 0;
    MPI_Comm_size(comm_, &n);
    return n;
  }
  int64_t sum(int64_t v) const {
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_SUM, comm_);
    return v;
  }
  int64_t max(int64_t v) const {
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, comm_);
    return v;
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Replicated tensors of a model: many small packed ones of uneven sizes, and two in datasets of
// their own (one of several pieces). Values are test_value(id, index) with id = tensor index.
struct Model {
  std::shared_ptr<Module> module = std::make_shared<Module>();
  std::vector<std::shared_ptr<Variable>> vars;
  int64_t bytes = 0;  // each tensor once
};

Model replicated_model(const Session& s, bool filled) {
  Model m;
  auto add = [&](const std::string& name, std::shared_ptr<Variable> v) {
    if (filled) fill(*v, static_cast<int64_t>(m.vars.size()));
    m.bytes += static_cast<int64_t>(v->bytes().size());
    m.module->track(name, v);
    m.vars.push_back(std::move(v));
  };
  for (int i = 0; i < 40; ++i)
    add("small" + std::to_string(i),
        Variable::create<float>(s, {1 + (i * 7) % 13, 5 + i % 3}, Layout::replicated()));
  add("scalar", Variable::create<int64_t>(s, {}, Layout::replicated()));
  add("big", Variable::create<double>(s, {300, 1000}, Layout::replicated()));  // 2.3 MiB: 3 pieces
  add("wide", Variable::create<int32_t>(s, {1 << 18}, Layout::replicated()));  // 1 MiB: a dataset
  return m;
}

SessionOptions with_mode(SessionOptions o, ReplicatedReads mode) {
  o.replicated_reads = mode;
  return o;
}

SessionOptions small_pieces(ReplicatedReads mode) {
  SessionOptions o;
  o.pack_threshold_bytes = 512 << 10;
  o.piece_bytes = 1 << 20;
  o.staging_bytes = 1 << 20;  // several rounds of shared batches
  return with_mode(o, mode);
}

class NodeShare : public ::testing::TestWithParam<ReplicatedReads> {
 protected:
  ReplicatedReads mode() const { return GetParam(); }
  bool once_per_node() const { return GetParam() == ReplicatedReads::kOncePerNode; }
};

TEST(NodeShareDefault, EveryRankReadsByDefault) {
  EXPECT_EQ(SessionOptions{}.replicated_reads, ReplicatedReads::kEveryRank);
}

TEST_P(NodeShare, ReplicatedValuesAreReadAsTheModeSays) {
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, small_pieces(mode()));
  const Model saved = replicated_model(s, true);
  const std::string path = Checkpoint(s, {{"m", saved.module}}).write(dir + "/r.h5");

  const Model target = replicated_model(s, false);
  Checkpoint ckpt(s, {{"m", target.module}});
  ckpt.read(path).assert_consumed();
  for (std::size_t i = 0; i < target.vars.size(); ++i)
    EXPECT_EQ(global_mismatches(*target.vars[i], static_cast<int64_t>(i)), 0) << "tensor " << i;

  const RestoreInfo& info = ckpt.last_restore();
  const NodeComm node;
  EXPECT_EQ(info.path, path);
  // Every rank needs every byte: it read it, or a rank of its node did and broadcast it.
  EXPECT_EQ(info.bytes_read_from_file + info.bytes_received_from_peers, target.bytes);
  if (!once_per_node()) {
    EXPECT_EQ(info.node_ranks, 1);
    EXPECT_EQ(info.bytes_received_from_peers, 0);
    return;
  }
  EXPECT_EQ(info.node_ranks, node.size());
  // The node as a whole read one copy from the file.
  EXPECT_EQ(node.sum(info.bytes_read_from_file), target.bytes);
  if (node.size() == 1) {
    EXPECT_EQ(info.bytes_received_from_peers, 0);
  } else {
    // Not one rank reading for everybody: every rank of the node read a share.
    EXPECT_GT(info.bytes_read_from_file, 0);
    EXPECT_LT(info.bytes_read_from_file, target.bytes);
  }
}

TEST_P(NodeShare, ShardedValuesAreNotSharedAndEveryByteIsReadOnce) {
  // Block layouts on both sides, as saved: no piece is needed by two ranks, nothing moves.
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, with_mode({}, mode()));
  auto v = Variable::create<float>(s, {2 * s.size() + 1, 7}, Layout::block(0));  // uneven shards
  auto w = Variable::create<int16_t>(s, {1, 3}, Layout::block(0));               // one rank owns it
  fill(*v, 1);
  fill(*w, 2);
  const std::string path = Checkpoint(s, {{"v", v}, {"w", w}}).write(dir + "/b.h5");
  auto v2 = Variable::create<float>(s, {2 * s.size() + 1, 7}, Layout::block(0));
  auto w2 = Variable::create<int16_t>(s, {1, 3}, Layout::block(0));
  Checkpoint ckpt(s, {{"v", v2}, {"w", w2}});
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*v2, 1), 0);
  EXPECT_EQ(global_mismatches(*w2, 2), 0);
  const RestoreInfo& info = ckpt.last_restore();
  EXPECT_EQ(info.bytes_received_from_peers, 0);
  EXPECT_EQ(info.bytes_read_from_file,
            static_cast<int64_t>(v2->bytes().size() + w2->bytes().size()));
}

TEST_P(NodeShare, PiecesSeveralRanksNeedOnAnNToMRestore) {
  // Saved in block rows by every rank, restored in block columns: every saved piece is needed
  // by every restoring rank. Values equal; the node reads each piece once, or each rank all.
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, with_mode({}, mode()));
  const Shape shape{3 * s.size() + 2, 2 * s.size() + 1};
  const int64_t total = shape[0] * shape[1] * 8;
  auto v = Variable::create<double>(s, shape, Layout::block(0));
  fill(*v, 7);
  const std::string path = Checkpoint(s, {{"v", v}}).write(dir + "/n.h5");
  auto v2 = Variable::create<double>(s, shape, Layout::block(1));
  Checkpoint ckpt(s, {{"v", v2}});
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*v2, 7), 0);
  const RestoreInfo& info = ckpt.last_restore();
  const NodeComm node;
  if (once_per_node()) {
    EXPECT_EQ(node.sum(info.bytes_read_from_file), total);
  } else {
    EXPECT_EQ(info.bytes_read_from_file, total);  // every rank owns columns of every row
    EXPECT_EQ(info.bytes_received_from_peers, 0);
  }
}

// Rows saved in blocks by every rank, restored by all ranks but the last (which owns nothing)
// in blocks whose edges fall inside saved blocks: neighbours need the same saved pieces, and
// (format 2.0) load different writers' records to find them.
std::shared_ptr<Variable> straddling_rows(const Session& s, const Shape& shape) {
  const int owners = std::max(1, s.size() - 1);
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(s.size()));
  for (int r = 0; r < owners; ++r) {
    const int64_t first = shape[0] * r / owners, last = shape[0] * (r + 1) / owners;
    boxes[static_cast<std::size_t>(r)].push_back({{first, 0}, {last - first, shape[1]}});
  }
  return Variable::create<float>(s, shape, Layout::explicit_boxes(std::move(boxes)));
}

TEST_P(NodeShare, SavedBoxesStraddlingNeighboursAreSharedAcrossRecords) {
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, with_mode({}, mode()));
  const Shape shape{4 * s.size() + 3, 5};
  const int64_t total = shape[0] * shape[1] * 4;
  auto v = Variable::create<float>(s, shape, Layout::block(0));
  fill(*v, 11);
  const std::string path = Checkpoint(s, {{"v", v}}).write(dir + "/s.h5");
  auto v2 = straddling_rows(s, shape);
  Checkpoint ckpt(s, {{"v", v2}});
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*v2, 11), 0);
  const RestoreInfo& info = ckpt.last_restore();
  const NodeComm node;
  if (node.size() != s.size()) return;  // the byte sums below are those of one node
  if (once_per_node()) {
    EXPECT_EQ(node.sum(info.bytes_read_from_file), total);
    // From 3 ranks on, two owners need a saved block between them.
    if (s.size() >= 3) {
      EXPECT_GT(node.max(info.bytes_received_from_peers), 0);
    }
  } else {
    EXPECT_EQ(info.bytes_received_from_peers, 0);
    if (s.size() >= 3) {
      EXPECT_GT(node.sum(info.bytes_read_from_file), total);
    }
  }
}

TEST_P(NodeShare, DeferredRestoresReadAloneInEitherMode) {
  // Objects attached after restore() are restored by each rank alone (no collective), one rank
  // at a time here: a collective would deadlock.
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, small_pieces(mode()));
  const Model saved = replicated_model(s, true);
  const Shape rows{4 * s.size() + 3, 5};
  const Shape wide{200, 700};  // 1.1 MiB: a dataset of two pieces
  auto sharded = Variable::create<float>(s, rows, Layout::block(0));
  auto replicated = Variable::create<double>(s, wide, Layout::replicated());
  fill(*sharded, 50);
  fill(*replicated, 51);
  const std::string path =
      Checkpoint(s, {{"m", saved.module}, {"rows", sharded}, {"wide", replicated}})
          .write(dir + "/late.h5");

  // The collective restore has the replicated model; the other two tensors come later.
  const Model target = replicated_model(s, false);
  Checkpoint ckpt(s, {{"m", target.module}});
  auto status = ckpt.read(path);
  const RestoreInfo collective = ckpt.last_restore();
  EXPECT_EQ(collective.bytes_read_from_file + collective.bytes_received_from_peers, target.bytes);
  auto late_rows = straddling_rows(s, rows);  // the last rank owns nothing
  auto late_wide = Variable::create<double>(s, wide, Layout::replicated());
  for (int turn = s.size() - 1; turn >= 0; --turn) {
    if (s.rank() == turn) {
      ckpt.root().track("rows", late_rows);
      ckpt.root().track("wide", late_wide);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  EXPECT_EQ(global_mismatches(*late_rows, 50), 0);
  EXPECT_EQ(global_mismatches(*late_wide, 51), 0);
  for (std::size_t i = 0; i < target.vars.size(); ++i)
    EXPECT_EQ(global_mismatches(*target.vars[i], static_cast<int64_t>(i)), 0) << "tensor " << i;
  status.assert_consumed();
  // What deferred restores read is not counted in the collective restore's info.
  EXPECT_EQ(ckpt.last_restore().bytes_read_from_file, collective.bytes_read_from_file);
  EXPECT_EQ(ckpt.last_restore().bytes_received_from_peers, collective.bytes_received_from_peers);
}

void expect_damage_reported(const std::string& tensor, int64_t element,
                            const SessionOptions& options) {
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, options);
  const Model saved = replicated_model(s, true);
  const std::string path = Checkpoint(s, {{"m", saved.module}}).write(dir + "/d.h5");
  const std::string key = "m/" + tensor + "/.ATTRIBUTES/VARIABLE_VALUE";
  if (s.rank() == 0) testing::flip_byte(path, testing::tensor_element_offset(path, key, element));
  MPI_Barrier(MPI_COMM_WORLD);
  const Model target = replicated_model(s, false);
  Checkpoint ckpt(s, {{"m", target.module}});
  expect_same_error_everywhere([&] { ckpt.read(path); }, ErrorCode::kCorrupt,
                               {"checksum mismatch", key, path, "rank "});
  // The job goes on: a sound restore afterwards works on every rank.
  const std::string again = Checkpoint(s, {{"m", saved.module}}).write(dir + "/e.h5");
  ckpt.read(again).assert_consumed();
  EXPECT_EQ(global_mismatches(*target.vars.back(), 42), 0);
}

TEST_P(NodeShare, DamagedPackedReplicatedPieceIsTheSameErrorOnEveryRank) {
  expect_damage_reported("small17", 3, small_pieces(mode()));
}

TEST_P(NodeShare, DamagedPieceOfASingleBatchIsTheSameErrorOnEveryRank) {
  // Default sizes: with kOncePerNode each rank reads its share for the node in one batch, merged
  // with its own packed reads.
  expect_damage_reported("small5", 0, with_mode({}, mode()));
}

TEST_P(NodeShare, DamagedDatasetReplicatedPieceIsTheSameErrorOnEveryRank) {
  expect_damage_reported("big", 200 * 1000 + 5, small_pieces(mode()));  // in its last piece
}

TEST_P(NodeShare, DamagedStraddlingShardPieceIsTheSameErrorOnEveryRank) {
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, with_mode({}, mode()));
  const Shape shape{4 * s.size() + 3, 5};
  auto v = Variable::create<float>(s, shape, Layout::block(0));
  fill(*v, 12);
  const std::string path = Checkpoint(s, {{"v", v}}).write(dir + "/ds.h5");
  const std::string key = "v/.ATTRIBUTES/VARIABLE_VALUE";
  // From 3 ranks on, row 5 lies in saved rank 1's block, which two owners need.
  const int64_t row = s.size() > 1 ? 5 : 0;
  if (s.rank() == 0)
    testing::flip_byte(path, testing::tensor_element_offset(path, key, row * shape[1] + 2));
  MPI_Barrier(MPI_COMM_WORLD);
  auto v2 = straddling_rows(s, shape);
  Checkpoint ckpt(s, {{"v", v2}});
  expect_same_error_everywhere([&] { ckpt.read(path); }, ErrorCode::kCorrupt,
                               {"checksum mismatch", key, path, "rank "});
}

TEST_P(NodeShare, AFailureOfOneRanksOwnReadsReachesEveryRank) {
  // The last rank fails in its own reads: with kOncePerNode, before the node's shared reads, and
  // the others must not wait for it there.
  const std::string dir = scratch_dir();
  const Session s(MPI_COMM_WORLD, small_pieces(mode()));
  const Model saved = replicated_model(s, true);
  const std::string path = Checkpoint(s, {{"m", saved.module}}).write(dir + "/f.h5");
  const Model target = replicated_model(s, false);
  Checkpoint ckpt(s, {{"m", target.module}});
  ::setenv("CAIRN_FAULT_THROW", ("restore_during_read:" + std::to_string(s.size() - 1)).c_str(), 1);
  expect_same_error_everywhere([&] { ckpt.read(path); }, ErrorCode::kIo,
                               {"fault injection", "restore_during_read"});
  ::unsetenv("CAIRN_FAULT_THROW");
  ckpt.read(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*target.vars.front(), 0), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, NodeShare,
                         ::testing::Values(ReplicatedReads::kEveryRank,
                                           ReplicatedReads::kOncePerNode),
                         [](const ::testing::TestParamInfo<ReplicatedReads>& param) {
                           return param.param == ReplicatedReads::kOncePerNode ? "OncePerNode"
                                                                               : "EveryRank";
                         });

}  // namespace
}  // namespace cairn
