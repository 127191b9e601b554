// SPDX-License-Identifier: Apache-2.0
// Option checks whose messages say the accepted range the way a person writes it.
#include <charconv>
#include <string>

#include "verbs/verbs.hpp"

namespace cairn::tools {
namespace {

// 1099511627776 -> "1 TiB"; other numbers as they are.
std::string readable(int64_t value, bool bytes) {
  if (!bytes) return std::to_string(value);
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  int64_t v = value;
  while (unit < 5 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++unit;
  }
  return std::to_string(v) + " " + units[unit];
}

}  // namespace

CLI::Validator integer_range(int64_t low, int64_t high, bool bytes) {
  const std::string range = high == INT64_MAX ? "an integer >= " + readable(low, bytes)
                                              : "an integer from " + readable(low, bytes) + " to " +
                                                    readable(high, bytes);
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [p, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || p != end) return "'" + text + "' is not " + range;
        if (v < low || v > high) return text + " is out of range: expected " + range;
        return {};
      },
      "[" +
          (high == INT64_MAX ? ">= " + readable(low, bytes)
                             : readable(low, bytes) + " .. " + readable(high, bytes)) +
          "]",
      "integer_range");
}

}  // namespace cairn::tools
