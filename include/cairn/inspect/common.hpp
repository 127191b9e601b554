// SPDX-License-Identifier: Apache-2.0
#pragma once
// The library behind the `cairn` command-line tool: exit codes and error reporting shared by every
// verb. Each verb is a function that takes its options and an output stream (see the other headers
// in cairn/inspect/), so that it can be tested without a process.
#include <functional>
#include <iosfwd>
#include <string>

#include "cairn/core/error.hpp"

namespace cairn {
class Comm;
}

namespace cairn::inspect {

/// Exit codes of every verb of the `cairn` tool.
enum ExitCode : int {
  kExitOk = 0,       // the verb did what was asked; the checkpoint is sound
  kExitFailed = 1,   // verification failed: damage, no commit mark, differences (diff)
  kExitUsage = 2,    // bad arguments: unknown verb or option, bad slice, unknown key
  kExitIo = 3,       // cannot read: missing file, not HDF5 or truncated, newer format, I/O error
  kExitDamaged = 4,  // diff only: a checkpoint is damaged or not committed (1 means "differs")
};

/// A cairn::Error whose exit code is not the one exit_code_for() derives from its code: a file
/// that does not open as HDF5 is kCorrupt, as the library reports it, but exits 3 (cannot read);
/// diff gives damage its own code.
class VerbError : public Error {
 public:
  VerbError(const Error& error, int exit_code) : Error(error), exit_code_(exit_code) {}
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

/// Local. The exit code for an error a verb stopped on: a VerbError's own; otherwise
/// kInvalidArgument is a usage error (2); kCorrupt is a failed verification (1); everything else
/// (kNotFound, kIo, kHdf5, kVersion, ...) means the input could not be read (3).
int exit_code_for(const Error& error) noexcept;

/// Local. A stable machine name for an error code: "invalid_argument", "not_found", "corrupt",
/// "unsupported_version", "shard_mismatch", "hdf5", "mpi", "serialization", "io",
/// "remote_rank_failed", "internal".
const char* code_name(ErrorCode code) noexcept;

/// Local. The error's message without the "<code>: " prefix and the " [context]" suffix.
std::string bare_message(const Error& error);

/// Local. The JSON error object a verb prints under --json: {"error": {"verb", "code",
/// "exit_code", "message", and the context members "path", "key", "box", "rank", "operation"
/// that are set}}, as text with a trailing newline.
std::string error_json(const std::string& verb, ErrorCode code, int exit_code,
                       const std::string& message, const ErrorContext& context = {});

/// Local. Runs `body` and returns its exit code. An exception is printed to `err` as
/// "cairn <verb>: <message>" and becomes exit_code_for() of it (3 for a non-cairn exception).
/// With `json`, the error is also printed to `out` as error_json(), so that standard output holds
/// one JSON object whether the verb succeeds or fails.
int run_guarded(const std::string& verb, std::ostream& out, std::ostream& err, bool json,
                const std::function<int()>& body);
/// Local. run_guarded() without JSON.
int run_guarded(const std::string& verb, std::ostream& err, const std::function<int()>& body);

/// Collective over `comm`. Runs `body` on rank 0 alone (a verb one process does for the whole job,
/// as export writes one file) and returns its exit code on every rank. An exception from `body`
/// is raised on every rank as the same cairn::Error.
int run_on_rank_zero(const Comm& comm, const std::function<int()>& body);

}  // namespace cairn::inspect
