// SPDX-License-Identifier: Apache-2.0
#pragma once
// A save's format 2.0 metadata: the header and the table rank 0 writes, the record each rank
// writes. Their sizes do not depend on the checksums (fixed width), so datasets are created for
// them before the checksums are known; the contents are encoded once they are.
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/save_plan.hpp"
#include "storage/table.hpp"

namespace cairn::detail {

/// Local (rank 0). The table of the graph `nodes` and the plan, without the checksums of the
/// replicated pieces and global blobs (other ranks wrote most of them: see global_entries()).
GlobalTable make_table(const std::vector<NodeRecord>& nodes, const SavePlan& plan, int world_size);
/// Local. This rank's record: its pieces of block, grid and explicit tensors and its per-rank
/// blobs, with their checksums as the plan has them and packed offsets made absolute with
/// `region_offset` (where this rank's packed region starts).
RankRecord make_record(const SavePlan& plan, int rank, int64_t region_offset);
/// Local. The replicated pieces and global blobs this rank (job rank `rank`) wrote, for the table
/// of the file it writes into.
std::string global_entries(const SavePlan& plan, int rank, int64_t region_offset);
/// Local (rank 0). Puts every rank's global_entries() into `table` (made by make_table).
/// Throws kInternal if an entry is missing or twice: the ranks' plans disagree.
void merge_global_entries(GlobalTable& table, const std::vector<std::string>& entries);
/// Local. The bytes encode_record() gives for this rank's record, before it is made.
int64_t record_bytes(const SavePlan& plan);
/// Local. Whether a save of `needed_bytes` fits into `free_bytes` (negative: unknown, so it does).
bool fits(int64_t needed_bytes, int64_t free_bytes) noexcept;
/// Local. Throws ErrorCode::kIo naming `path` and rank `measured_by` when `free_bytes` (what that
/// rank's statvfs found; negative: unknown, nothing is checked) is less than `needed_bytes`, the
/// bytes of data and cairn's metadata the save writes into its file: less than the file will
/// take, so the save could not have succeeded. Deterministic: every rank given the same values
/// throws the same error.
void check_free_space(int64_t needed_bytes, int64_t free_bytes, int measured_by,
                      const std::string& path);

}  // namespace cairn::detail
