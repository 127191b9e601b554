// SPDX-License-Identifier: Apache-2.0
#include "inspect/node_parts.hpp"

#include <algorithm>
#include <filesystem>

#include "cairn/core/error.hpp"

namespace cairn::inspect::detail {
namespace {

namespace fs = std::filesystem;

// k for "node-<k>" (plain decimal, no sign, no leading zero but "0"), else -1.
int node_number(const std::string& name) {
  const std::string prefix = "node-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 9)
    return -1;
  const std::string digits = name.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (digits.size() > 1 && digits[0] == '0'))
    return -1;
  return std::stoi(digits);
}

}  // namespace

std::vector<std::pair<int, std::string>> node_directories(const std::string& root) {
  std::error_code ec;
  if (!fs::exists(root, ec))
    throw Error(ErrorCode::kNotFound, "no such node-local directory",
                {.checkpoint = root, .operation = "node-local parts"});
  if (!fs::is_directory(root, ec))
    throw Error(ErrorCode::kInvalidArgument,
                "not a directory (give the node-local root, which holds node-<k> directories)",
                {.checkpoint = root, .operation = "node-local parts"});
  std::vector<std::pair<int, std::string>> out;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const int k = node_number(entry.path().filename().string());
    if (k >= 0 && entry.is_directory()) out.emplace_back(k, entry.path().string());
  }
  if (ec)
    throw Error(ErrorCode::kIo, "cannot read the node-local directory: " + ec.message(),
                {.checkpoint = root, .operation = "node-local parts"});
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<NodePart> probe_node_parts(const std::vector<std::pair<int, std::string>>& directories,
                                       const std::string& name, int nodes) {
  std::vector<NodePart> parts;
  for (const auto& [k, dir] : directories) {
    const std::string path = (fs::path(dir) / name).string();
    std::error_code ec;
    if (!fs::exists(path, ec)) continue;
    const Probe p = probe_file(path);
    NodePart part{k, path, status_name(p.status), p.problem.message};
    if (p.status == FileStatus::kCommitted) {
      if (!p.part) {
        part.status = "mismatch";
        part.message = "a whole checkpoint, not a node's part";
      } else if (p.part->index != k || (nodes > 0 && p.part->count != nodes)) {
        part.status = "mismatch";
        part.message = "holds " + describe_part(*p.part) + ", expected part " +
                       std::to_string(k + 1) + (nodes > 0 ? " of " + std::to_string(nodes) : "");
      } else {
        part.status = "ok";
        part.message = describe_part(*p.part);
      }
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace cairn::inspect::detail
