// SPDX-License-Identifier: Apache-2.0
#pragma once
// Text helpers shared by the verbs: aligned tables, sizes, times.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/units.hpp"

namespace cairn::inspect::detail {

/// Columns sized to their widest cell, separated by two spaces. Columns listed in `right` are
/// right-aligned (numbers); the last column is not padded. An all-empty header is not printed.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right = {});
  void add(std::vector<std::string> row);
  bool empty() const noexcept { return rows_.empty(); }
  void print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// "512 B", "1.5 KiB", "2.0 GiB": the log lines' formatter.
using cairn::detail::human_bytes;
/// "2025-05-01T12:00:00Z" (UTC).
std::string utc_time(int64_t unix_seconds);
/// Text of `n` with "s" appended unless n == 1: plural(3, "tensor") == "3 tensors".
std::string plural(int64_t n, const std::string& noun);
/// Display width of UTF-8 text (code points).
std::size_t display_width(const std::string& text);

}  // namespace cairn::inspect::detail
