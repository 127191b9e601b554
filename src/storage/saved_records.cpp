// SPDX-License-Identifier: Apache-2.0
#include "storage/saved_records.hpp"

#include "storage/container_reader.hpp"
#include "storage/schema.hpp"

namespace cairn::detail {

SavedRecords::SavedRecords(Header header, GlobalTable table)
    : header_(std::move(header)),
      table_(std::move(table)),
      loaded_(static_cast<std::size_t>(header_.world_size), 0) {}

void SavedRecords::append_writers_for(std::size_t tensor, const Box& region,
                                      std::vector<int>& out) const {
  const TableTensor& t = table_.tensors.at(tensor);
  if (t.layout != LayoutRule::kReplicated)
    append_writers_intersecting(t, region, header_.world_size, out);
}

bool SavedRecords::loaded(int writer) const {
  return writer >= 0 && writer < header_.world_size && loaded_[static_cast<std::size_t>(writer)];
}

void SavedRecords::load(ContainerReader& reader, Manifest& manifest,
                        const std::vector<int>& writers) {
  for (int w : writers) {
    if (w < 0 || w >= header_.world_size || loaded_[static_cast<std::size_t>(w)]) continue;
    if (!header_.holds_writer(w))
      throw Error(
          ErrorCode::kNotFound,
          "this file is part " + std::to_string(header_.part_index + 1) + " of " +
              std::to_string(header_.part_count) +
              " of a node-local checkpoint and does not hold rank " + std::to_string(w) +
              "'s data (a part restores only at the job size and node grouping that "
              "saved it)",
          {.rank = reader.rank(), .checkpoint = reader.path(), .operation = "read records"});
    const std::string bytes = reader.read_record(w, header_.world_size);
    add_record(manifest, table_, header_, decode_record(bytes, w, table_, header_, reader.path()));
    loaded_[static_cast<std::size_t>(w)] = 1;
  }
}

void SavedRecords::load_all(ContainerReader& reader, Manifest& manifest) {
  const std::vector<std::string> all = reader.read_all_records(header_.world_size);
  for (int w = 0; w < header_.world_size; ++w) {
    // A part's index is world-sized: an absent writer's record is empty. One that is not is
    // damage (or a file that is not the part it says), never data to ignore.
    if (!header_.holds_writer(w) && !all[static_cast<std::size_t>(w)].empty())
      throw Error(ErrorCode::kCorrupt,
                  "part " + std::to_string(header_.part_index + 1) + " of " +
                      std::to_string(header_.part_count) + " holds a record of " +
                      std::to_string(all[static_cast<std::size_t>(w)].size()) + " bytes for rank " +
                      std::to_string(w) +
                      ", which is not one of its writers (the record of an absent writer is empty)",
                  {.rank = reader.rank(),
                   .checkpoint = reader.path(),
                   .key = schema::kRecordsDataset,
                   .operation = "read records"});
    if (loaded_[static_cast<std::size_t>(w)] || !header_.holds_writer(w)) continue;
    add_record(manifest, table_, header_,
               decode_record(all[static_cast<std::size_t>(w)], w, table_, header_, reader.path()));
    loaded_[static_cast<std::size_t>(w)] = 1;
  }
}

}  // namespace cairn::detail
