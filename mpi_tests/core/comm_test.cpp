#include <gtest/gtest.h>
#include <mpi.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"

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
    std::string expected = "corrupt: bad box on rank " + std::to_string(lowest);
    if (failing_ranks > 1)
      expected += " (" + std::to_string(failing_ranks) + " ranks failed; the lowest is shown)";
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
    std::string expected = "not found: no checkpoint in /d";
    if (comm.size() > 1)
      expected += " (" + std::to_string(comm.size()) + " ranks failed; the lowest is shown)";
    for (const std::string& text : texts) EXPECT_EQ(text, expected);
  }
}

TEST(Comm, CommunicatorIsUsableAfterAnAgreedFailure) {
  const Comm comm(MPI_COMM_WORLD);
  EXPECT_THROW(comm.run_agreed([&] {
    if (comm.rank() == 0) throw std::logic_error("x");
  }),
               Error);
  EXPECT_EQ(comm.allreduce_sum(1), comm.size());
}

}  // namespace
}  // namespace cairn
