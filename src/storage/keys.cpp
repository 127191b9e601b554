// SPDX-License-Identifier: Apache-2.0
#include "storage/keys.hpp"

#include "storage/manifest.hpp"

namespace cairn::detail {

std::string variable_key(const std::string& path) {
  return path + "/.ATTRIBUTES/VARIABLE_VALUE";
}
std::string state_key(const std::string& path) {
  return path + "/.ATTRIBUTES/STATE";
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? escape_name(name) : parent + "/" + escape_name(name);
}

std::string slot_path(const std::string& variable_path, const std::string& optimizer_path,
                      const std::string& slot_name) {
  return variable_path + "/.OPTIMIZER_SLOT/" + optimizer_path + "/" + escape_name(slot_name);
}

}  // namespace cairn::detail
