// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "cairn/comm/session.hpp"

namespace cairn {
namespace {

TEST(Session, OwnsADuplicateOfTheUsersCommunicator) {
  const Session session(MPI_COMM_WORLD);
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  EXPECT_EQ(session.rank(), world_rank);
  EXPECT_EQ(session.size(), world_size);
  int relation = MPI_IDENT;
  MPI_Comm_compare(session.comm().get(), MPI_COMM_WORLD, &relation);
  EXPECT_EQ(relation, MPI_CONGRUENT);
}

TEST(Session, RecordsTheThreadLevel) {
  int provided = -1;
  MPI_Query_thread(&provided);
  const Session session(MPI_COMM_WORLD);
  EXPECT_EQ(session.thread_level(), provided);
}

TEST(Session, KeepsItsOptions) {
  SessionOptions options;
  options.write_mode = IoMode::kCollective;
  options.piece_bytes = 1234;
  const Session session(MPI_COMM_WORLD, options);
  EXPECT_EQ(session.options().write_mode, IoMode::kCollective);
  EXPECT_EQ(session.options().piece_bytes, 1234);
}

TEST(Session, RejectsNonsensicalOptions) {
  SessionOptions options;
  options.piece_bytes = 0;
  EXPECT_THROW(Session(MPI_COMM_WORLD, options), Error);
}

TEST(Session, NonsensicalOptionsOnOneRankAreTheSameErrorOnEveryRank) {
  // Only the last rank's options are wrong: every rank must throw (not wait in the constructor's
  // reduction for a rank that threw alone), naming that rank.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  SessionOptions options;
  if (rank == size - 1) options.staging_bytes = 0;
  std::string text;
  try {
    const Session session(MPI_COMM_WORLD, options);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.context().rank, size - 1);
    text = e.what();
  }
  EXPECT_NE(text.find("not so on rank " + std::to_string(size - 1)), std::string::npos) << text;
}

TEST(Session, RejectsReplicatedReadsThatDifferBetweenRanks) {
  // A restore with kOncePerNode makes collectives that kEveryRank does not: a mismatch must be
  // the same error on every rank when the session is made, not a hang in a later restore.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  SessionOptions options;
  options.replicated_reads =
      rank == 0 ? ReplicatedReads::kOncePerNode : ReplicatedReads::kEveryRank;
  std::string text;
  try {
    const Session session(MPI_COMM_WORLD, options);
    EXPECT_EQ(session.options().replicated_reads, options.replicated_reads);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    text = e.what();
  }
  if (size == 1) {
    EXPECT_EQ(text, "");
  } else {
    EXPECT_NE(text.find("replicated_reads differs between ranks"), std::string::npos) << text;
  }
}

TEST(Session, RejectsTheNullCommunicator) {
  try {
    const Session session(MPI_COMM_NULL);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Session, WorksOnASplitCommunicator) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm halves = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &halves);
  {
    const Session session(halves);
    EXPECT_EQ(session.rank(), world_rank / 2);
    EXPECT_EQ(session.comm().allreduce_sum(1), session.size());
  }
  MPI_Comm_free(&halves);
}

}  // namespace
}  // namespace cairn
