// SPDX-License-Identifier: Apache-2.0
#include "cairn/inspect/common.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/comm/comm.hpp"
#include "comm/wire.hpp"

namespace cairn::inspect {

int exit_code_for(const Error& error) noexcept {
  if (const auto* verb_error = dynamic_cast<const VerbError*>(&error))
    return verb_error->exit_code();
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kCorrupt:
      return kExitFailed;
    default:
      return kExitIo;
  }
}

const char* code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kVersion:
      return "unsupported_version";
    case ErrorCode::kShardMismatch:
      return "shard_mismatch";
    case ErrorCode::kHdf5:
      return "hdf5";
    case ErrorCode::kMpi:
      return "mpi";
    case ErrorCode::kSerialization:
      return "serialization";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kRemoteRankFailed:
      return "remote_rank_failed";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string bare_message(const Error& error) {
  std::string text = error.what();
  const std::string prefix = std::string(to_string(error.code())) + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  // The suffix Error appends: " [rank 3, checkpoint c.h5, key k, box [0:2], during read]".
  const ErrorContext& c = error.context();
  std::string parts;
  auto add = [&](const std::string& part) { parts += (parts.empty() ? "" : ", ") + part; };
  if (c.rank >= 0) add("rank " + std::to_string(c.rank));
  if (!c.checkpoint.empty()) add("checkpoint " + c.checkpoint);
  if (!c.key.empty()) add("key " + c.key);
  if (!c.box.empty()) add("box " + c.box);
  if (!c.operation.empty()) add("during " + c.operation);
  const std::string suffix = parts.empty() ? "" : " [" + parts + "]";
  if (!suffix.empty() && text.size() >= suffix.size() &&
      text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0)
    text.erase(text.size() - suffix.size());
  return text;
}

std::string error_json(const std::string& verb, ErrorCode code, int exit_code,
                       const std::string& message, const ErrorContext& context) {
  nlohmann::ordered_json e;
  e["verb"] = verb;
  e["code"] = code_name(code);
  e["exit_code"] = exit_code;
  e["message"] = message;
  if (!context.checkpoint.empty()) e["path"] = context.checkpoint;
  if (!context.key.empty()) e["key"] = context.key;
  if (!context.box.empty()) e["box"] = context.box;
  if (context.rank >= 0) e["rank"] = context.rank;
  if (!context.operation.empty()) e["operation"] = context.operation;
  // Messages may quote bytes of a damaged file: replace invalid UTF-8 rather than throw.
  return nlohmann::ordered_json{{"error", e}}.dump(2, ' ', false,
                                                   nlohmann::json::error_handler_t::replace) +
         '\n';
}

int run_guarded(const std::string& verb, std::ostream& out, std::ostream& err, bool json,
                const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    err << "cairn " << verb << ": " << e.what() << '\n';
    const int code = exit_code_for(e);
    if (json) out << error_json(verb, e.code(), code, bare_message(e), e.context());
    return code;
  } catch (const std::exception& e) {
    err << "cairn " << verb << ": " << e.what() << '\n';
    if (json) out << error_json(verb, ErrorCode::kIo, kExitIo, e.what());
    return kExitIo;
  }
}

int run_guarded(const std::string& verb, std::ostream& err, const std::function<int()>& body) {
  std::ostream nowhere(nullptr);
  return run_guarded(verb, nowhere, err, false, body);
}

int run_on_rank_zero(const Comm& comm, const std::function<int()>& body) {
  wire::Message outcome;
  if (comm.rank() == 0) {
    try {
      outcome = {{"exit", body()}};
    } catch (...) {
      outcome = {{"error", wire::from_error(current_exception_as_error({.rank = 0}))}};
    }
  }
  wire::broadcast(comm, outcome, 0);
  if (outcome.contains("error")) throw wire::to_error(outcome.at("error"));
  return outcome.at("exit").get<int>();
}

}  // namespace cairn::inspect
