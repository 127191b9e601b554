// SPDX-License-Identifier: Apache-2.0
#pragma once
// The single exception type cairn throws, with a code and the context a user needs to act on it.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cairn {

enum class ErrorCode : int {
  kInvalidArgument = 1,
  kNotFound,
  kCorrupt,
  kVersion,
  kShardMismatch,
  kHdf5,
  kMpi,
  kSerialization,
  kIo,
  kRemoteRankFailed,
  kInternal,  // a broken invariant inside cairn: please report it
};

const char* to_string(ErrorCode code) noexcept;

/// Where an error happened; empty fields are omitted from the message.
struct ErrorContext {
  int rank = -1;
  std::string checkpoint;
  std::string key;
  std::string box;
  std::string operation;
};

class Error : public std::runtime_error {
 public:
  /// what() is "<code name>: <message> [<context>]".
  Error(ErrorCode code, const std::string& message, ErrorContext context = {});
  /// The error a collective step agreed on: the lowest failing rank's, with the number of ranks
  /// that failed (what() says so when more than one did).
  Error(ErrorCode code, const std::string& message, ErrorContext context, int failed_ranks);
  /// Rebuilds an error from a full text kept verbatim (message() is that text, context() empty).
  static Error from_remote(ErrorCode code, const std::string& full_text);

  ErrorCode code() const noexcept { return code_; }
  /// The message alone, without the code name and the context (to wrap it in another Error).
  const std::string& message() const noexcept { return message_; }
  const ErrorContext& context() const noexcept { return context_; }
  /// Ranks that failed in the collective step that raised this error (1 for a local error).
  int failed_ranks() const noexcept { return failed_ranks_; }
  /// Whether a collective step agreed on this error (every rank of that step throws it), as
  /// opposed to one rank's own: an enclosing agreement keeps its count of failed ranks.
  bool agreed() const noexcept { return agreed_; }

 private:
  struct Verbatim {};
  Error(Verbatim, ErrorCode code, const std::string& full_text);
  ErrorCode code_;
  std::string message_;
  ErrorContext context_;
  int failed_ranks_ = 1;
  bool agreed_ = false;
};

/// Local. Call inside a catch block: the exception being handled as a cairn::Error. A
/// cairn::Error is returned as is; std::bad_alloc becomes kIo "out of memory", any other exception
/// kIo with its what(), each with `context`. Collective code uses it so that no exception other
/// than cairn::Error can skip an agreement on one rank.
Error current_exception_as_error(const ErrorContext& context);

}  // namespace cairn
