// SPDX-License-Identifier: Apache-2.0
#pragma once
// What cairn tells operators: one line per save, restore, fallback past a damaged checkpoint,
// retention deletion and directory-recovery action. Routed to stderr, or to the program's own
// logger through a sink.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cairn {

/// How much cairn logs. A line is printed when its level is at most the configured one.
enum class LogLevel {
  kQuiet = 0,    // nothing (only as a setting)
  kWarning = 1,  // a fallback past a damaged checkpoint, a file retention could not delete
  kInfo = 2,     // one line per save, restore, retention deletion and recovery action
  kDebug = 3,    // the manager's decisions (skipped saves, preserved checkpoints, state file)
};

/// Receives one line (no trailing newline, no "cairn: " prefix; control characters in paths and
/// names escaped as in error texts: "\n", "\t", "\xNN") and the rank that logs it. Calls are
/// serialized; an asynchronous save calls it from its background thread. It must not throw
/// and must not call cairn.
using LogSink = std::function<void(LogLevel level, int rank, std::string_view line)>;

struct LogOptions {
  /// Overridden by the environment variable CAIRN_LOG (quiet, warning, info or debug; with
  /// ",all" appended, e.g. CAIRN_LOG=debug,all, every rank logs), read once when the Session is
  /// created: Session::options() holds the result, and a later setenv changes nothing.
  LogLevel level = LogLevel::kInfo;
  /// Rank 0 alone logs what concerns the whole job; true: every rank logs its own view.
  bool all_ranks = false;
  /// Where lines go; empty: stderr, as "cairn: <line>" ("cairn [rank R]: <line>" with all_ranks).
  LogSink sink;
};

/// Local. "quiet", "warning", "info" or "debug" (case-sensitive); nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view text) noexcept;

/// Local. "quiet", "warning", "info" or "debug".
std::string_view log_level_name(LogLevel level) noexcept;

}  // namespace cairn
