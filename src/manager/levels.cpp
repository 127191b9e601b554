// SPDX-License-Identifier: Apache-2.0
// LevelOptions from a batch script's environment.
#include <cstdlib>
#include <string>

#include "cairn/core/error.hpp"
#include "cairn/manager/levels.hpp"

namespace cairn {
namespace {

[[noreturn]] void bad_variable(const char* name, const std::string& value, const char* expected) {
  throw Error(
      ErrorCode::kInvalidArgument,
      std::string("environment variable ") + name + "='" + value + "': expected " + expected,
      {.operation = "multi-level options"});
}

int parse_int(const char* name, const std::string& value, int low) {
  std::size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || v < low)
    bad_variable(name, value, ("an integer >= " + std::to_string(low)).c_str());
  return v;
}

}  // namespace

LevelOptions levels_from_environment(LevelOptions options) {
  auto get = [](const char* name) -> const char* { return std::getenv(name); };
  if (const char* v = get("CAIRN_NODE_LOCAL_DIR")) options.node_local_directory = v;
  if (const char* v = get("CAIRN_REDUNDANCY")) {
    const std::string s = v;
    if (s == "none") {
      options.redundancy = Redundancy::kNone;
    } else if (s == "partner") {
      options.redundancy = Redundancy::kPartner;
    } else if (s == "xor") {
      options.redundancy = Redundancy::kXor;
    } else if (s.rfind("xor:", 0) == 0) {
      options.redundancy = Redundancy::kXor;
      options.xor_group_size = parse_int("CAIRN_REDUNDANCY", s.substr(4), 2);
    } else {
      bad_variable("CAIRN_REDUNDANCY", s, "none, partner, xor or xor:<nodes per group>");
    }
  }
  if (const char* v = get("CAIRN_KEEP_NODE_LOCAL"))
    options.keep_node_local = parse_int("CAIRN_KEEP_NODE_LOCAL", v, 1);
  if (const char* v = get("CAIRN_SHARED_EVERY"))
    options.shared_every = parse_int("CAIRN_SHARED_EVERY", v, 0);
  if (const char* v = get("CAIRN_RANK_PER_NODE")) {
    const std::string s = v;
    if (s != "0" && s != "1") bad_variable("CAIRN_RANK_PER_NODE", s, "0 or 1");
    options.rank_per_node = s == "1";
  }
  return options;
}

}  // namespace cairn
