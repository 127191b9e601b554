// SPDX-License-Identifier: Apache-2.0
#include "cairn/core/error.hpp"

#include "core/printable.hpp"

#include <new>
#include <string>
#include <vector>

namespace cairn {
namespace {

// " [rank 3, key model/w, during save]" or "" when no context field is set.
std::string describe_context(const ErrorContext& context) {
  std::vector<std::string> parts;
  if (context.rank >= 0) parts.push_back("rank " + std::to_string(context.rank));
  if (!context.checkpoint.empty())
    parts.push_back("checkpoint " + detail::printable(context.checkpoint));
  if (!context.key.empty()) parts.push_back("key " + detail::printable(context.key));
  if (!context.box.empty()) parts.push_back("box " + context.box);
  if (!context.operation.empty()) parts.push_back("during " + context.operation);
  if (parts.empty()) return {};
  std::string text = " [";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) text += ", ";
    text += parts[i];
  }
  text += "]";
  return text;
}

std::string compose(ErrorCode code, const std::string& message, const ErrorContext& context) {
  return std::string(to_string(code)) + ": " + message + describe_context(context);
}

}  // namespace

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kVersion:
      return "unsupported version";
    case ErrorCode::kShardMismatch:
      return "shard mismatch";
    case ErrorCode::kHdf5:
      return "HDF5 error";
    case ErrorCode::kMpi:
      return "MPI error";
    case ErrorCode::kSerialization:
      return "serialization error";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kRemoteRankFailed:
      return "remote rank failed";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

Error::Error(ErrorCode code, const std::string& message, ErrorContext context)
    : std::runtime_error(compose(code, message, context)),
      code_(code),
      message_(message),
      context_(std::move(context)) {}

Error::Error(ErrorCode code, const std::string& message, ErrorContext context, int failed_ranks)
    : std::runtime_error(compose(code, message, context) +
                         (failed_ranks > 1 ? " (" + std::to_string(failed_ranks) +
                                                 " ranks failed; the lowest is shown)"
                                           : std::string())),
      code_(code),
      message_(message),
      context_(std::move(context)),
      failed_ranks_(failed_ranks),
      agreed_(true) {}

Error::Error(Verbatim, ErrorCode code, const std::string& full_text)
    : std::runtime_error(full_text), code_(code), message_(full_text) {}

Error current_exception_as_error(const ErrorContext& context) {
  try {
    throw;
  } catch (const Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kIo, "out of memory", context);
  } catch (const std::exception& e) {
    return Error(ErrorCode::kIo, e.what(), context);
  } catch (...) {
    return Error(ErrorCode::kIo, "unknown exception", context);
  }
}

Error Error::from_remote(ErrorCode code, const std::string& full_text) {
  return Error(Verbatim{}, code, full_text);
}

}  // namespace cairn
