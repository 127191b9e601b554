// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the format 2.x codec files (table_codec.cpp, record.cpp, table_manifest.cpp) share.
#include <cstdint>
#include <string>
#include <vector>

#include "storage/table.hpp"

namespace cairn::detail {

/// The reader's bound on the bytes of all node paths together: a hostile table of a few kilobytes
/// can otherwise describe paths of terabytes (a deep chain whose edge names share one long string).
inline constexpr int64_t kMaxTotalPathBytes = int64_t{1} << 30;
/// The same for the strings the table's elements refer to (many elements may refer to one long
/// string, and each decoded element holds a copy): at most this many times the table's size...
inline constexpr uint64_t kMaxStringBytesPerTableByte = 16;
/// ...or this much, whichever is more.
inline constexpr uint64_t kMinStringBytesLimit = uint64_t{64} << 20;

[[noreturn]] void table_corrupt(const std::string& checkpoint, const std::string& key,
                                const std::string& what);
[[noreturn]] void record_corrupt(const std::string& checkpoint, int rank, const std::string& key,
                                 const std::string& what);

/// Local. Empty if [offset, offset + bytes) lies inside the packed data of `packed_bytes`, else
/// what is wrong, for a message.
std::string packed_range_problem(int64_t offset, int64_t bytes, int64_t packed_bytes);

/// Local. How many pieces box_pieces() cuts `box` into, computed without cutting it; saturates at
/// INT64_MAX, so that a hostile shape cannot make a reader allocate its pieces before comparing
/// their number with what the file holds.
int64_t box_piece_count(const TableTensor& t, const Box& box, int64_t piece_bytes);

/// Local. Every node's path (docs/format.md, "Nodes and edges"), checking that each can be defined
/// and that they total at most kMaxTotalPathBytes; kCorrupt naming the node otherwise. The node
/// and slot indices must already be inside `nodes`.
std::vector<std::string> table_paths(const GlobalTable& table, const std::string& checkpoint);

/// Local. The table tensor's key and state's key from the node paths.
std::string tensor_key(const GlobalTable& table, const std::vector<std::string>& paths,
                       std::size_t tensor);
std::string state_key_of(const GlobalTable& table, const std::vector<std::string>& paths,
                         std::size_t state);

/// Local. Layout::describe() of the layout the rule stands for (explicit: of its listed boxes).
std::string layout_description(const TableTensor& t);

}  // namespace cairn::detail
