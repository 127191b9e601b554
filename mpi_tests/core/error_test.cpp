#include <gtest/gtest.h>

#include <string>

#include "cairn/core/error.hpp"

namespace cairn {
namespace {

TEST(Error, NamesEveryCode) {
  EXPECT_STREQ(to_string(ErrorCode::kInvalidArgument), "invalid argument");
  EXPECT_STREQ(to_string(ErrorCode::kNotFound), "not found");
  EXPECT_STREQ(to_string(ErrorCode::kCorrupt), "corrupt");
  EXPECT_STREQ(to_string(ErrorCode::kVersion), "unsupported version");
  EXPECT_STREQ(to_string(ErrorCode::kShardMismatch), "shard mismatch");
  EXPECT_STREQ(to_string(ErrorCode::kHdf5), "HDF5 error");
  EXPECT_STREQ(to_string(ErrorCode::kMpi), "MPI error");
  EXPECT_STREQ(to_string(ErrorCode::kSerialization), "serialization error");
  EXPECT_STREQ(to_string(ErrorCode::kIo), "I/O error");
  EXPECT_STREQ(to_string(ErrorCode::kRemoteRankFailed), "remote rank failed");
}

TEST(Error, MessageWithoutContextHasNoBrackets) {
  const Error error(ErrorCode::kNotFound, "no such key");
  EXPECT_STREQ(error.what(), "not found: no such key");
  EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  EXPECT_EQ(error.context().rank, -1);
}

TEST(Error, MessageListsEveryContextFieldInOrder) {
  const Error error(ErrorCode::kCorrupt, "checksum differs",
                    ErrorContext{.rank = 3,
                                 .checkpoint = "/d/ckpt-1.h5",
                                 .key = "model/w",
                                 .box = "[0:4, 2:8]",
                                 .operation = "restore"});
  EXPECT_STREQ(error.what(),
               "corrupt: checksum differs [rank 3, checkpoint /d/ckpt-1.h5, key model/w, box "
               "[0:4, 2:8], during restore]");
  EXPECT_EQ(error.context().key, "model/w");
}

TEST(Error, MessageOmitsEmptyContextFields) {
  const Error rank_zero(ErrorCode::kIo, "disk full", ErrorContext{.rank = 0});
  EXPECT_STREQ(rank_zero.what(), "I/O error: disk full [rank 0]");
  const Error key_and_op(ErrorCode::kShardMismatch, "gap",
                         ErrorContext{.key = "k", .operation = "validate"});
  EXPECT_STREQ(key_and_op.what(), "shard mismatch: gap [key k, during validate]");
}

TEST(Error, FromRemoteKeepsTextVerbatim) {
  const std::string text = "HDF5 error: H5Dwrite failed [rank 7]";
  const Error error = Error::from_remote(ErrorCode::kHdf5, text);
  EXPECT_EQ(error.what(), text);
  EXPECT_EQ(error.code(), ErrorCode::kHdf5);
  try {
    throw error;
  } catch (const std::runtime_error& caught) {
    EXPECT_EQ(caught.what(), text);
  }
}

}  // namespace
}  // namespace cairn
