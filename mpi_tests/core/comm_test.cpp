// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "comm/wire.hpp"

namespace cairn {
namespace {

// A deterministic string of varying length per rank; rank 0's is empty.
std::string payload_of(int rank) {
  std::string text;
  for (int i = 0; i < (rank * 37) % 101; ++i)
    text.push_back(static_cast<char>('a' + (rank + i) % 26));
  if (rank % 2 == 1) text.push_back('\0');  // embedded NULs must survive
  return text;
}

// What an agreed error's text says when `failed` ranks failed (Error's own suffix).
std::string with_failures(std::string text, int failed) {
  if (failed > 1) text += " (" + std::to_string(failed) + " ranks failed; the lowest is shown)";
  return text;
}

TEST(Comm, DuplicatesTheParentWithErrorsReturn) {
  const Comm comm(MPI_COMM_WORLD);
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  EXPECT_EQ(comm.rank(), world_rank);
  EXPECT_EQ(comm.size(), world_size);

  int relation = MPI_IDENT;
  MPI_Comm_compare(comm.get(), MPI_COMM_WORLD, &relation);
  EXPECT_EQ(relation, MPI_CONGRUENT);

  MPI_Errhandler handler = MPI_ERRHANDLER_NULL;
  MPI_Comm_get_errhandler(comm.get(), &handler);
  EXPECT_EQ(handler, MPI_ERRORS_RETURN);
  MPI_Errhandler_free(&handler);
}

TEST(Comm, MoveTransfersOwnership) {
  Comm first(MPI_COMM_WORLD);
  const MPI_Comm handle = first.get();
  Comm second(std::move(first));
  EXPECT_EQ(first.get(), MPI_COMM_NULL);  // NOLINT(bugprone-use-after-move): moved-from is null
  EXPECT_EQ(second.get(), handle);

  Comm third(MPI_COMM_WORLD);
  third = std::move(second);
  EXPECT_EQ(third.get(), handle);
  EXPECT_EQ(second.get(), MPI_COMM_NULL);  // NOLINT(bugprone-use-after-move)
  third.barrier();
}

TEST(Comm, NodeRankIsAskedOnceThenKept) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm split = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &split), MPI_SUCCESS);
  Comm half(split);
  MPI_Comm_free(&split);
  EXPECT_FALSE(half.node_rank_known());
  const int first = half.node_rank();  // collective: every rank of `half`
  EXPECT_TRUE(half.node_rank_known());
  EXPECT_EQ(first, half.rank());  // the tests run on one machine: one node
  // Local from now on: only some ranks ask again, which would hang if it were collective.
  if (rank % 4 < 2) {
    EXPECT_EQ(half.node_rank(), first);
  }
  // Kept across a move.
  Comm moved(std::move(half));
  EXPECT_TRUE(moved.node_rank_known());
  EXPECT_EQ(moved.node_rank(), first);
}

TEST(Comm, CheckMpiThrowsWithTheMpiText) {
  EXPECT_NO_THROW(check_mpi(MPI_SUCCESS, "nothing"));
  try {
    check_mpi(MPI_ERR_COMM, "MPI_Frobnicate");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMpi);
    const std::string text = e.what();
    EXPECT_EQ(text.rfind("MPI error: MPI_Frobnicate failed: ", 0), 0u) << text;
    EXPECT_GT(text.size(), std::string("MPI error: MPI_Frobnicate failed: ").size()) << text;
  }
}

TEST(Comm, ErrorsReturnInsteadOfAborting) {
  const Comm comm(MPI_COMM_WORLD);
  std::string bytes = "x";
  // Every rank passes the same invalid root, so every rank gets the error back.
  try {
    comm.broadcast(bytes, comm.size());
    FAIL() << "expected an MPI error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMpi);
  }
}

TEST(Comm, Reductions) {
  const Comm comm(MPI_COMM_WORLD);
  const int64_t n = comm.size();
  const int64_t r = comm.rank();
  EXPECT_EQ(comm.allreduce_sum(r + 1), n * (n + 1) / 2);
  EXPECT_EQ(comm.allreduce_max(r * 10), (n - 1) * 10);
  EXPECT_EQ(comm.allreduce_min(r - 5), -5);
  EXPECT_EQ(comm.allreduce_bor(uint64_t{1} << (r % 64)), (uint64_t{1} << n) - 1);
  // Values beyond 32 bits must not be truncated.
  EXPECT_EQ(comm.allreduce_sum(int64_t{1} << 40), n << 40);

  std::vector<int64_t> values = {r, -r, 7, (r == 0) ? int64_t{1} << 50 : 0};
  comm.allreduce_max(values);
  EXPECT_EQ(values, (std::vector<int64_t>{n - 1, 0, 7, int64_t{1} << 50}));

  const std::vector<int64_t> gathered = comm.allgather(r * r);
  ASSERT_EQ(gathered.size(), static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(gathered[i], i * i);
}

TEST(Comm, BroadcastsStringsOfAnyLengthFromEveryRoot) {
  const Comm comm(MPI_COMM_WORLD);
  for (int root = 0; root < comm.size(); ++root) {
    for (std::size_t length :
         {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{3} << 20}) {
      std::string expected(length, '\0');
      for (std::size_t i = 0; i < length; ++i)
        expected[i] = static_cast<char>((i * 31 + root) % 251);
      // Non-roots start with a different, longer value that must be replaced entirely.
      std::string bytes = comm.rank() == root ? expected : std::string(length + 5, 'z');
      comm.broadcast(bytes, root);
      EXPECT_EQ(bytes, expected) << "root " << root << " length " << length;
    }
  }
}

TEST(Comm, GathersStringsOfVaryingLengths) {
  const Comm comm(MPI_COMM_WORLD);
  for (int root = 0; root < comm.size(); ++root) {
    const std::vector<std::string> gathered = comm.gather(payload_of(comm.rank()), root);
    if (comm.rank() != root) {
      EXPECT_TRUE(gathered.empty());
      continue;
    }
    ASSERT_EQ(gathered.size(), static_cast<std::size_t>(comm.size()));
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(gathered[r], payload_of(r)) << "rank " << r;
  }
}

TEST(Comm, AllgathersStringsOfVaryingLengths) {
  const Comm comm(MPI_COMM_WORLD);
  const std::vector<std::string> gathered = comm.allgather(payload_of(comm.rank()));
  ASSERT_EQ(gathered.size(), static_cast<std::size_t>(comm.size()));
  for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(gathered[r], payload_of(r)) << "rank " << r;

  const std::vector<std::string> all_empty = comm.allgather(std::string());
  ASSERT_EQ(all_empty.size(), static_cast<std::size_t>(comm.size()));
  for (const std::string& text : all_empty) EXPECT_TRUE(text.empty());
}

TEST(Comm, AgreeWithoutFailuresDoesNotThrow) {
  const Comm comm(MPI_COMM_WORLD);
  EXPECT_NO_THROW(comm.agree(nullptr));
  EXPECT_NO_THROW(comm.run_agreed([] {}));
}

// Runs `step` and returns the text every rank threw, gathered on rank 0 (empty elsewhere).
std::vector<std::string> texts_thrown(const Comm& comm, const std::function<void()>& step,
                                      ErrorCode expected_code) {
  std::string text = "<no exception>";
  try {
    step();
  } catch (const Error& e) {
    text = e.what();
    EXPECT_EQ(e.code(), expected_code) << text;
  }
  return comm.gather(text, 0);
}

TEST(Comm, AgreeTurnsOneRanksFailureIntoTheSameErrorEverywhere) {
  const Comm comm(MPI_COMM_WORLD);
  const int failing = comm.size() - 1;
  const Error failure(ErrorCode::kHdf5, "H5Dwrite failed", ErrorContext{.rank = failing});
  const auto texts = texts_thrown(
      comm, [&] { comm.agree(comm.rank() == failing ? &failure : nullptr); }, ErrorCode::kHdf5);
  if (comm.rank() == 0) {
    ASSERT_EQ(texts.size(), static_cast<std::size_t>(comm.size()));
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], failure.what()) << "rank " << r;
  }
}

TEST(Comm, AgreeReportsTheLowestFailingRankAndTheCount) {
  const Comm comm(MPI_COMM_WORLD);
  // Odd ranks fail, plus the last rank; with one rank, rank 0 is the last rank.
  const bool fails = comm.rank() % 2 == 1 || comm.rank() == comm.size() - 1;
  int failing_ranks = 0;
  int lowest = comm.size();
  for (int r = comm.size() - 1; r >= 0; --r) {
    if (r % 2 == 1 || r == comm.size() - 1) {
      ++failing_ranks;
      lowest = r;
    }
  }
  const Error failure(ErrorCode::kCorrupt, "bad box on rank " + std::to_string(comm.rank()));
  const auto texts = texts_thrown(
      comm, [&] { comm.agree(fails ? &failure : nullptr); }, ErrorCode::kCorrupt);
  if (comm.rank() == 0) {
    const std::string expected =
        with_failures("corrupt: bad box on rank " + std::to_string(lowest), failing_ranks);
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], expected) << "rank " << r;
  }
}

TEST(Comm, RunAgreedConvertsStandardExceptions) {
  const Comm comm(MPI_COMM_WORLD);
  const int failing = comm.size() - 1;
  const auto texts = texts_thrown(
      comm,
      [&] {
        comm.run_agreed([&] {
          if (comm.rank() == failing) throw std::runtime_error("disk on fire");
        });
      },
      ErrorCode::kIo);
  if (comm.rank() == 0) {
    const std::string expected = "I/O error: disk on fire [rank " + std::to_string(failing) + "]";
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], expected) << "rank " << r;
  }
}

TEST(Comm, RunAgreedReportsOutOfMemory) {
  const Comm comm(MPI_COMM_WORLD);
  const auto texts = texts_thrown(
      comm,
      [&] {
        comm.run_agreed([&] {
          if (comm.rank() == 0) throw std::bad_alloc();
        });
      },
      ErrorCode::kIo);
  if (comm.rank() == 0) {
    for (const std::string& text : texts) EXPECT_EQ(text, "I/O error: out of memory [rank 0]");
  }
}

TEST(Comm, RunAgreedKeepsTheCodeOfACairnError) {
  const Comm comm(MPI_COMM_WORLD);
  const auto texts = texts_thrown(
      comm,
      [&] { comm.run_agreed([&] { throw Error(ErrorCode::kNotFound, "no checkpoint in /d"); }); },
      ErrorCode::kNotFound);
  if (comm.rank() == 0) {
    const std::string expected = with_failures("not found: no checkpoint in /d", comm.size());
    for (const std::string& text : texts) EXPECT_EQ(text, expected);
  }
}

TEST(Comm, AllgatherAgreedReturnsEveryRanksRowInRankOrder) {
  const Comm comm(MPI_COMM_WORLD);
  // Three values per rank; rank 0 has none of its own (zeros), like a rank that owns nothing.
  const int64_t r = comm.rank();
  const std::vector<int64_t> rows =
      comm.allgather_agreed({r * 10, -r, r == 0 ? 0 : r * r}, nullptr);
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(3 * comm.size()));
  for (int64_t k = 0; k < comm.size(); ++k) {
    EXPECT_EQ(rows[3 * k], k * 10) << "rank " << k;
    EXPECT_EQ(rows[3 * k + 1], -k) << "rank " << k;
    EXPECT_EQ(rows[3 * k + 2], k * k) << "rank " << k;
  }
  EXPECT_TRUE(comm.allgather_agreed({}, nullptr).empty());
}

TEST(Comm, AllgatherAgreedThrowsTheLowestFailureOnEveryRank) {
  const Comm comm(MPI_COMM_WORLD);
  // The last rank and, from 3 ranks on, rank 1 fail: rank 1's error is the one every rank sees.
  const bool fails = comm.rank() == comm.size() - 1 || (comm.size() >= 3 && comm.rank() == 1);
  const int lowest = comm.size() >= 3 ? 1 : comm.size() - 1;
  const int failing_ranks = comm.size() >= 3 ? 2 : 1;
  const Error mine(ErrorCode::kCorrupt, "table of rank " + std::to_string(comm.rank()));
  const auto texts = texts_thrown(
      comm, [&] { comm.allgather_agreed({comm.rank()}, fails ? &mine : nullptr); },
      ErrorCode::kCorrupt);
  if (comm.rank() == 0) {
    const std::string expected =
        with_failures("corrupt: table of rank " + std::to_string(lowest), failing_ranks);
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], expected) << "rank " << r;
  }
  EXPECT_EQ(comm.allreduce_sum(1), comm.size());  // nobody is left in a collective
}

TEST(Comm, AllreduceMaxAgreedReducesOrThrowsEverywhere) {
  const Comm comm(MPI_COMM_WORLD);
  std::vector<int64_t> values{comm.rank(), -comm.rank()};
  comm.allreduce_max_agreed(values, nullptr);
  EXPECT_EQ(values, (std::vector<int64_t>{comm.size() - 1, 0}));

  const Error mine(ErrorCode::kShardMismatch, "walk failed", ErrorContext{.rank = comm.rank()});
  const auto texts = texts_thrown(
      comm,
      [&] {
        std::vector<int64_t> more{1};
        comm.allreduce_max_agreed(more, comm.rank() == comm.size() - 1 ? &mine : nullptr);
      },
      ErrorCode::kShardMismatch);
  if (comm.rank() == 0) {
    const std::string expected =
        "shard mismatch: walk failed [rank " + std::to_string(comm.size() - 1) + "]";
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], expected) << "rank " << r;
  }
}

TEST(Comm, AllreduceSumAgreedSumsOrThrowsEverywhere) {
  const Comm comm(MPI_COMM_WORLD);
  // Rank 1 owns nothing (0 bytes), the others rank * 1000 + 7: neither the largest value nor any
  // one rank's is the sum from 2 ranks on.
  auto bytes_of = [](int r) -> int64_t { return r == 1 ? 0 : r * 1000 + 7; };
  const int64_t mine_bytes = bytes_of(comm.rank());
  int64_t expected = 0;
  for (int r = 0; r < comm.size(); ++r) expected += bytes_of(r);
  EXPECT_EQ(comm.allreduce_sum_agreed(mine_bytes, nullptr), expected);

  // Rank 0 and the last rank fail: rank 0's error is the one every rank sees.
  const bool fails = comm.rank() == 0 || comm.rank() == comm.size() - 1;
  const int failing_ranks = comm.size() > 1 ? 2 : 1;
  const Error mine(ErrorCode::kIo, "close of rank " + std::to_string(comm.rank()) + " failed");
  const auto texts = texts_thrown(
      comm, [&] { comm.allreduce_sum_agreed(mine_bytes, fails ? &mine : nullptr); },
      ErrorCode::kIo);
  if (comm.rank() == 0) {
    const std::string text = with_failures("I/O error: close of rank 0 failed", failing_ranks);
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], text) << "rank " << r;
  }
  EXPECT_EQ(comm.allreduce_sum(1), comm.size());  // nobody is left in a collective
}

TEST(Comm, GatherAgreedGathersOnTheRootOrThrowsEverywhere) {
  const Comm comm(MPI_COMM_WORLD);
  const int root = comm.size() - 1;
  // Rank 0 sends nothing; the others strings of their own length.
  const std::string mine = comm.rank() == 0 ? "" : payload_of(comm.rank());
  const std::vector<std::string> all = comm.gather_agreed(mine, root, nullptr);
  if (comm.rank() == root) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(comm.size()));
    EXPECT_TRUE(all[0].empty());
    for (int r = 1; r < comm.size(); ++r) EXPECT_EQ(all[r], payload_of(r)) << "rank " << r;
  } else {
    EXPECT_TRUE(all.empty());
  }

  // The root fails, and from 3 ranks on rank 1 too: rank 1's error (the lowest) is the one every
  // rank sees, and the root gathers nothing.
  const bool fails = comm.rank() == root || (comm.size() >= 3 && comm.rank() == 1);
  const int lowest = comm.size() >= 3 ? 1 : root;
  const int failing_ranks = comm.size() >= 3 ? 2 : 1;
  const Error failure(ErrorCode::kCorrupt, "record of rank " + std::to_string(comm.rank()),
                      ErrorContext{.rank = comm.rank()});
  const auto texts = texts_thrown(
      comm, [&] { comm.gather_agreed(mine, root, fails ? &failure : nullptr); },
      ErrorCode::kCorrupt);
  if (comm.rank() == 0) {
    const std::string text = with_failures("corrupt: record of rank " + std::to_string(lowest) +
                                               " [rank " + std::to_string(lowest) + "]",
                                           failing_ranks);
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], text) << "rank " << r;
  }
  EXPECT_EQ(comm.allreduce_sum(1), comm.size());
}

TEST(Comm, BroadcastAgreedRelaysEveryPartFromTheRoot) {
  const Comm comm(MPI_COMM_WORLD);
  const int root = comm.size() - 1;
  // An empty part between two others, and parts of different lengths; the other ranks' strings
  // hold stale text of other sizes, replaced.
  std::string a = comm.rank() == root ? payload_of(7) : "stale",
              empty = comm.rank() == root ? "" : "x",
              c = comm.rank() == root ? std::string(100000, 'c') : "";
  comm.broadcast_agreed({&a, &empty, &c}, root, nullptr);
  EXPECT_EQ(a, payload_of(7));
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(c, std::string(100000, 'c'));
}

TEST(Comm, BroadcastAgreedThrowsTheRootsFailureEverywhere) {
  const Comm comm(MPI_COMM_WORLD);
  const Error failure(ErrorCode::kCorrupt, "table checksum differs", ErrorContext{.rank = 0});
  std::string part = "unchanged";
  const auto texts = texts_thrown(
      comm, [&] { comm.broadcast_agreed({&part}, 0, comm.rank() == 0 ? &failure : nullptr); },
      ErrorCode::kCorrupt);
  if (comm.rank() == 0) {
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(texts[r], failure.what()) << "rank " << r;
  }
  EXPECT_EQ(part, "unchanged");
}

TEST(Comm, RunLocalReturnsTheErrorRunAgreedWouldAgreeOn) {
  const Comm comm(MPI_COMM_WORLD);
  EXPECT_FALSE(comm.run_local([] {}).has_value());
  const std::optional<Error> failure = comm.run_local([] { throw std::runtime_error("full"); });
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code(), ErrorCode::kIo);
  EXPECT_EQ(std::string(failure->what()),
            "I/O error: full [rank " + std::to_string(comm.rank()) + "]");
}

TEST(Comm, CommunicatorIsUsableAfterAnAgreedFailure) {
  const Comm comm(MPI_COMM_WORLD);
  EXPECT_THROW(comm.run_agreed([&] {
    if (comm.rank() == 0) throw std::logic_error("x");
  }),
               Error);
  EXPECT_EQ(comm.allreduce_sum(1), comm.size());
}

TEST(Comm, AgreedErrorsKeepTheLowestFailingRanksStructureOnEveryRank) {
  const Comm comm(MPI_COMM_WORLD);
  // Ranks from the middle up fail, each with its own context; rank size/2 is the lowest.
  const int lowest = comm.size() / 2;
  const int failed = comm.size() - lowest;
  const Error mine(ErrorCode::kCorrupt,
                   "piece checksum differs on rank " + std::to_string(comm.rank()),
                   ErrorContext{.rank = comm.rank(),
                                .checkpoint = "/run/ckpt-" + std::to_string(comm.rank()) + ".h5",
                                .key = "model/w" + std::to_string(comm.rank()),
                                .box = "[0:2]",
                                .operation = "restore"});
  try {
    comm.agree(comm.rank() >= lowest ? &mine : nullptr);
    FAIL() << "expected the agreed error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_EQ(e.message(), "piece checksum differs on rank " + std::to_string(lowest));
    EXPECT_EQ(e.context().rank, lowest);
    EXPECT_EQ(e.context().checkpoint, "/run/ckpt-" + std::to_string(lowest) + ".h5");
    EXPECT_EQ(e.context().key, "model/w" + std::to_string(lowest));
    EXPECT_EQ(e.context().box, "[0:2]");
    EXPECT_EQ(e.context().operation, "restore");
    EXPECT_EQ(e.failed_ranks(), failed);
    const std::string expected =
        with_failures(Error(ErrorCode::kCorrupt, e.message(), e.context()).what(), failed);
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

TEST(Comm, RunAgreedGivesAForeignExceptionTheFailingRanksContext) {
  const Comm comm(MPI_COMM_WORLD);
  const int failing = comm.size() - 1;
  try {
    comm.run_agreed([&] {
      if (comm.rank() == failing) throw std::length_error("vector too long");
    });
    FAIL() << "expected the agreed error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_EQ(e.message(), "vector too long");
    EXPECT_EQ(e.context().rank, failing);
    EXPECT_EQ(e.failed_ranks(), 1);
  }
}

TEST(Wire, MessagesRoundTripAndBroadcast) {
  const Comm comm(MPI_COMM_WORLD);
  wire::Message m;
  if (comm.rank() == 0)
    m = {{"path", std::string("a\0b\n", 5)},
         {"n", -7},
         {"bytes", wire::bytes_field(std::string("\xff\x00\x01", 3))}};
  wire::broadcast(comm, m, 0);
  EXPECT_EQ(m.at("path").get<std::string>(), std::string("a\0b\n", 5));
  EXPECT_EQ(m.at("n").get<int>(), -7);
  EXPECT_EQ(wire::bytes_of(m.at("bytes")), std::string("\xff\x00\x01", 3));
  EXPECT_EQ(wire::decode(wire::encode(m)), m);
  const auto all = wire::gather(comm, wire::Message(payload_of(comm.rank())), 0);
  if (comm.rank() == 0) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(comm.size()));
    for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(all[r].get<std::string>(), payload_of(r));
  }
  // Every rank receives every rank's message, in rank order; rank 1 sends an empty array.
  const auto everyone = wire::allgather(
      comm, comm.rank() == 1 ? wire::Message::array() : wire::Message{{"r", comm.rank()}});
  ASSERT_EQ(everyone.size(), static_cast<std::size_t>(comm.size()));
  for (int r = 0; r < comm.size(); ++r) {
    if (r == 1)
      EXPECT_EQ(everyone[r], wire::Message::array());
    else
      EXPECT_EQ(everyone[r].at("r").get<int>(), r);
  }
}

TEST(Wire, ErrorsRoundTripWithTheirStructure) {
  const Error structured(
      ErrorCode::kShardMismatch, "boxes overlap",
      ErrorContext{
          .rank = 2, .checkpoint = "c.h5", .key = "k", .box = "[1:2]", .operation = "save"},
      3);
  const Error back = wire::to_error(wire::decode(wire::encode(wire::from_error(structured))));
  EXPECT_EQ(back.code(), structured.code());
  EXPECT_EQ(back.message(), structured.message());
  EXPECT_EQ(back.context().rank, 2);
  EXPECT_EQ(back.context().checkpoint, "c.h5");
  EXPECT_EQ(back.context().key, "k");
  EXPECT_EQ(back.context().box, "[1:2]");
  EXPECT_EQ(back.context().operation, "save");
  EXPECT_EQ(back.failed_ranks(), 3);
  EXPECT_STREQ(back.what(), structured.what());
  const Error verbatim =
      Error::from_remote(ErrorCode::kNotFound, "assert_consumed failed: 1 problem(s)");
  EXPECT_STREQ(wire::to_error(wire::from_error(verbatim)).what(), verbatim.what());
}

TEST(Wire, MalformedBytesAreAnInternalError) {
  try {
    wire::decode(std::string("\xc1", 1));  // a MessagePack byte that is never used
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
  }
  try {
    wire::to_error(wire::Message{{"code", 3}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace cairn
