// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <functional>
#include <new>
#include <stdexcept>
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

TEST(Error, KeepsTheBareMessageSoThatWrappingDoesNotRepeatThePrefix) {
  const Error inner(ErrorCode::kSerialization, "cannot deserialize opaque state: bad archive");
  EXPECT_EQ(inner.message(), "cannot deserialize opaque state: bad archive");
  const Error outer(inner.code(), inner.message(),
                    ErrorContext{.key = "pos", .operation = "restore state"});
  EXPECT_STREQ(outer.what(),
               "serialization error: cannot deserialize opaque state: bad archive [key pos, during "
               "restore state]");
}

TEST(Error, AgreedErrorsSayHowManyRanksFailed) {
  const Error one(ErrorCode::kIo, "disk full", ErrorContext{.rank = 1}, 1);
  EXPECT_STREQ(one.what(), "I/O error: disk full [rank 1]");
  EXPECT_EQ(one.failed_ranks(), 1);
  const Error three(ErrorCode::kIo, "disk full", ErrorContext{.rank = 1}, 3);
  EXPECT_STREQ(three.what(), "I/O error: disk full [rank 1] (3 ranks failed; the lowest is shown)");
  EXPECT_EQ(three.failed_ranks(), 3);
  EXPECT_EQ(Error(ErrorCode::kIo, "x").failed_ranks(), 1);
}

TEST(Error, ContextNamesHaveTheirControlCharactersEscaped) {
  const Error error(ErrorCode::kNotFound, "no value",
                    ErrorContext{.checkpoint = "run\n1.h5",
                                 .key = std::string("a\tb/\x01"
                                                    "c\x7f")});
  EXPECT_STREQ(error.what(), "not found: no value [checkpoint run\\n1.h5, key a\\tb/\\x01c\\x7F]");
  EXPECT_EQ(error.context().key, std::string("a\tb/\x01"
                                             "c\x7f"));  // the context keeps the name
}

TEST(Error, CurrentExceptionBecomesACairnError) {
  auto convert = [](const std::function<void()>& thrower) {
    try {
      thrower();
    } catch (...) {
      return current_exception_as_error(ErrorContext{.rank = 5});
    }
    return Error(ErrorCode::kInternal, "nothing thrown");
  };
  const Error alloc = convert([] { throw std::bad_alloc(); });
  EXPECT_EQ(alloc.code(), ErrorCode::kIo);
  EXPECT_STREQ(alloc.what(), "I/O error: out of memory [rank 5]");
  const Error standard = convert([] { throw std::out_of_range("index 9"); });
  EXPECT_STREQ(standard.what(), "I/O error: index 9 [rank 5]");
  const Error own =
      convert([] { throw Error(ErrorCode::kCorrupt, "bad", ErrorContext{.key = "k"}); });
  EXPECT_STREQ(own.what(), "corrupt: bad [key k]");  // kept as it is, not given rank 5
  const Error other = convert([] { throw 42; });
  EXPECT_STREQ(other.what(), "I/O error: unknown exception [rank 5]");
}

}  // namespace
}  // namespace cairn
