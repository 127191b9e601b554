#pragma once
// The library behind the `cairn` command-line tool: exit codes and error reporting shared by every
// verb. Each verb is a function that takes its options and an output stream (see the other headers
// in cairn/inspect/), so that it can be tested without a process.
#include <functional>
#include <iosfwd>
#include <string>

#include "cairn/core/error.hpp"

namespace cairn::inspect {

/// Exit codes of every verb of the `cairn` tool.
enum ExitCode : int {
  kExitOk = 0,      // the verb did what was asked; the checkpoint is sound
  kExitFailed = 1,  // verification failed: damage, no commit mark, differences (diff)
  kExitUsage = 2,   // bad arguments: unknown option, bad slice, unknown key
  kExitIo = 3,      // cannot read: missing file, not HDF5 or truncated, newer format, I/O error
};

/// Local. The exit code for an error a verb stopped on: kInvalidArgument is a usage error (2);
/// kCorrupt is a failed verification (1); everything else (kNotFound, kIo, kHdf5, kVersion, ...)
/// means the input could not be read (3).
int exit_code_for(const Error& error) noexcept;

/// Local. The error's message without the "<code>: " prefix and the " [context]" suffix.
std::string bare_message(const Error& error);

/// Local. Runs `body` and returns its exit code. An exception is printed to `err` as
/// "cairn <verb>: <message>" and becomes exit_code_for() of it (3 for a non-cairn exception).
int run_guarded(const std::string& verb, std::ostream& err, const std::function<int()>& body);

}  // namespace cairn::inspect
