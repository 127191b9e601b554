// SPDX-License-Identifier: Apache-2.0
#include "inspect/scan.hpp"

#include <algorithm>
#include <filesystem>

#include "cairn/core/error.hpp"

namespace cairn::inspect::detail {
namespace {

namespace fs = std::filesystem;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

bool is_temporary_name(const std::string& name) {
  const auto pos = name.find(".h5.tmp-");
  return pos != std::string::npos && pos > 0;
}

bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      std::size_t ei = i, ej = j;
      while (ei < a.size() && is_digit(a[ei])) ++ei;
      while (ej < b.size() && is_digit(b[ej])) ++ej;
      std::string x = a.substr(i, ei - i), y = b.substr(j, ej - j);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = ei;
      j = ej;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
  return a < b;
}

std::vector<std::string> checkpoint_like_files(const std::string& directory) {
  const ErrorContext ctx{.checkpoint = directory, .operation = "list checkpoint directory"};
  std::error_code ec;
  if (!fs::exists(directory, ec)) throw Error(ErrorCode::kNotFound, "no such directory", ctx);
  if (!fs::is_directory(directory, ec))
    throw Error(ErrorCode::kInvalidArgument, "not a directory", ctx);
  std::vector<std::string> names;
  fs::directory_iterator it(directory, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot read the directory: " + ec.message(), ctx);
  for (const fs::directory_entry& entry : it) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".h5") || is_temporary_name(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end(), natural_less);
  return names;
}

}  // namespace cairn::inspect::detail
