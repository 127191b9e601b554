// SPDX-License-Identifier: Apache-2.0
#pragma once
// Names (edge names, keys, paths) are user data and may hold control characters; a tab or a
// newline printed raw would break a tree, a table or a one-line error. Every place that prints a
// name in text for people goes through this one function.
#include <string>
#include <string_view>

namespace cairn::detail {

/// Local. `text` with control characters escaped: "\t", "\n", "\r", and "\xNN" for the others
/// (bytes below 0x20 and 0x7F). Other bytes, including UTF-8 and backslashes, are kept as they are.
std::string printable(std::string_view text);

}  // namespace cairn::detail
