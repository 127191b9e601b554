// SPDX-License-Identifier: Apache-2.0
#pragma once
// The library's side of logging: resolves CAIRN_LOG against the session's LogOptions and hands
// lines to the sink.
#include <cstdint>
#include <string>

#include "cairn/core/log.hpp"

namespace cairn::detail {

/// Local. `options` with the environment variable CAIRN_LOG applied (level, and ",all" for
/// all_ranks); an unknown value is reported once per process and ignored. Session's constructor
/// calls it: the variable is read once per session, never while lines are logged.
LogOptions with_log_environment(LogOptions options);

/// Local. Whether `rank` prints lines of `level` under `options` (as with_log_environment() left
/// them). Cheap: call it before formatting a line.
bool log_enabled(const LogOptions& options, int rank, LogLevel level);

/// Local. Hands `line` to the sink (stderr by default) if log_enabled(), with control characters
/// escaped as printable() does for error texts (a path may hold a newline). Never throws: a line
/// that cannot be written is dropped.
void log_line(const LogOptions& options, int rank, LogLevel level,
              const std::string& line) noexcept;

/// "123456789 bytes (117.7 MiB)": exact for scripts, readable for people.
std::string describe_bytes(int64_t bytes);

/// "0.512 s".
std::string describe_seconds(double seconds);

/// "2.31 GB/s" (decimal, as storage is rated), or "- GB/s" if `seconds` is not positive.
std::string describe_rate(int64_t bytes, double seconds);

}  // namespace cairn::detail
