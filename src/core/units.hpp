// SPDX-License-Identifier: Apache-2.0
#pragma once
// Sizes for people, shared by the log lines and the `cairn` tool so that both print them alike.
#include <cstdint>
#include <string>

namespace cairn::detail {

/// Local. "512 B", "1.5 KiB", "2.0 GiB": binary units, one decimal.
std::string human_bytes(int64_t bytes);

}  // namespace cairn::detail
