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
  Error(ErrorCode code, const std::string& message, ErrorContext context = {});
  /// Rebuilds an error that was raised on another rank, keeping its full text verbatim.
  static Error from_remote(ErrorCode code, const std::string& full_text);

  ErrorCode code() const noexcept { return code_; }
  const ErrorContext& context() const noexcept { return context_; }

 private:
  struct Verbatim {};
  Error(Verbatim, ErrorCode code, const std::string& full_text);
  ErrorCode code_;
  ErrorContext context_;
};

}  // namespace cairn
