// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the format 2.x codec files (table_codec.cpp, record.cpp, table_manifest.cpp) share.
#include <cstdint>
#include <optional>
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

/// Local. The one box a rule layout (block, grid) gives writer `writer`, if it has one; nothing
/// for replicated and explicit layouts.
std::optional<Box> rule_writer_box(const TableTensor& t, int writer, int world_size);

/// Local. Calls `visit(const Box&)` with each box writer `writer` wrote of `t`, in
/// writer_boxes() order, without building the list: a record's decoder and its merge into the
/// manifest walk every tensor, and a list per tensor was most of their allocations.
template <class Visit>
void for_each_writer_box(const TableTensor& t, int writer, int world_size, Visit&& visit) {
  if (t.layout == LayoutRule::kExplicit) {
    for (const TableBox& b : t.boxes)
      if (b.rank == static_cast<uint32_t>(writer) && !b.box.empty()) visit(b.box);
    return;
  }
  if (std::optional<Box> box = rule_writer_box(t, writer, world_size)) visit(*box);
}

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
