// SPDX-License-Identifier: Apache-2.0
#include "core/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/printable.hpp"
#include "core/units.hpp"

namespace cairn {

std::optional<LogLevel> parse_log_level(std::string_view text) noexcept {
  if (text == "quiet") return LogLevel::kQuiet;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "info") return LogLevel::kInfo;
  if (text == "debug") return LogLevel::kDebug;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kQuiet:
      return "quiet";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "info";
}

namespace detail {
namespace {

// Serializes sink calls: an asynchronous save logs from its background thread.
std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

// Read once, when a session is made: log lines come from the asynchronous saver's thread too, and
// a getenv there would race any setenv of the program.
LogOptions with_log_environment(LogOptions options) {
  const char* env = std::getenv("CAIRN_LOG");
  if (!env || !*env) return options;
  std::string_view text(env);
  constexpr std::string_view kAll = ",all";
  if (text.size() > kAll.size() && text.substr(text.size() - kAll.size()) == kAll) {
    options.all_ranks = true;
    text.remove_suffix(kAll.size());
  }
  if (auto level = parse_log_level(text)) {
    options.level = *level;
  } else {
    static std::once_flag warned;  // once per process, not once per session
    std::call_once(warned, [env] {
      std::fprintf(stderr,
                   "cairn: ignoring CAIRN_LOG='%s' (expected quiet, warning, info or debug, "
                   "optionally followed by ',all')\n",
                   env);
    });
  }
  return options;
}

bool log_enabled(const LogOptions& options, int rank, LogLevel level) {
  if (level == LogLevel::kQuiet) return false;
  return level <= options.level && (rank == 0 || options.all_ranks);
}

void log_line(const LogOptions& options, int rank, LogLevel level,
              const std::string& line) noexcept {
  try {
    if (!log_enabled(options, rank, level)) return;
    // Paths and names are user data: a newline in one must not split a line, here as in errors.
    const std::string shown = printable(line);
    std::lock_guard<std::mutex> lock(sink_mutex());
    if (options.sink) {
      options.sink(level, rank, shown);
      return;
    }
    if (options.all_ranks)
      std::fprintf(stderr, "cairn [rank %d]: %s\n", rank, shown.c_str());
    else
      std::fprintf(stderr, "cairn: %s\n", shown.c_str());
  } catch (...) {
    // A log line is never worth failing a save or a restore for.
  }
}

std::string describe_bytes(int64_t bytes) {
  const std::string exact = std::to_string(bytes) + " bytes";
  return bytes < 1024 ? exact : exact + " (" + human_bytes(bytes) + ")";
}

std::string describe_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", seconds);
  return text;
}

std::string describe_rate(int64_t bytes, double seconds) {
  if (seconds <= 0) return "- GB/s";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GB/s", static_cast<double>(bytes) / 1e9 / seconds);
  return text;
}

}  // namespace detail
}  // namespace cairn
