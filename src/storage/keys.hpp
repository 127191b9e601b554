// SPDX-License-Identifier: Apache-2.0
#pragma once
// Object paths and value keys (docs/format.md, "Keys"). The save path builds them while it walks
// the live graph, and a format 2.x reader rebuilds them from the table, so both use these.
#include <string>

namespace cairn::detail {

/// Local. The key under which an object's value is stored, TensorFlow style.
std::string variable_key(const std::string& path);
std::string state_key(const std::string& path);
/// Local. `parent`/`escape_name(name)`, or just the escaped name at the root.
std::string child_path(const std::string& parent, const std::string& name);
/// Local. The path of a slot variable of `variable_path` held by the optimizer at
/// `optimizer_path`.
std::string slot_path(const std::string& variable_path, const std::string& optimizer_path,
                      const std::string& slot_name);

}  // namespace cairn::detail
