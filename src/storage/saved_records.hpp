// SPDX-License-Identifier: Apache-2.0
#pragma once
// The records of a format 2.x checkpoint that a reader has taken in so far. A restoring rank reads
// only the records of the writers whose boxes intersect what it restores, when it first needs them
// (deferred restores included); tools read them all.
#include <cstdint>
#include <string>
#include <vector>

#include "storage/manifest.hpp"
#include "storage/table.hpp"

namespace cairn::detail {

class ContainerReader;

class SavedRecords {
 public:
  SavedRecords(Header header, GlobalTable table);

  const Header& header() const noexcept { return header_; }
  const GlobalTable& table() const noexcept { return table_; }
  /// Local. Appends to `out` the writers whose records hold pieces of tensor `tensor` (its index
  /// in the table and in the manifest) that intersect `region`, none for replicated tensors; a
  /// writer equal to the last one in `out` is skipped (the caller sorts and dedupes).
  void append_writers_for(std::size_t tensor, const Box& region, std::vector<int>& out) const;
  /// Local. Reads, checks and adds to `manifest` the records of `writers` not taken in yet, through
  /// `reader`. Throws kCorrupt naming the checkpoint and the writer for a damaged record.
  void load(ContainerReader& reader, Manifest& manifest, const std::vector<int>& writers);
  /// Local. Every record not taken in yet.
  void load_all(ContainerReader& reader, Manifest& manifest);
  bool loaded(int writer) const;

 private:
  Header header_;
  GlobalTable table_;
  std::vector<char> loaded_;  // per writer
};

}  // namespace cairn::detail
