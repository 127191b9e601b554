// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/save_metadata.hpp"

#include <algorithm>
#include <unordered_map>

#include "cairn/core/error.hpp"
#include "core/printable.hpp"
#include "core/units.hpp"
#include "storage/durable_file.hpp"

namespace cairn::detail {
namespace {

LayoutRule rule_of(Layout::Kind kind) {
  switch (kind) {
    case Layout::Kind::kReplicated:
      return LayoutRule::kReplicated;
    case Layout::Kind::kBlock:
      return LayoutRule::kBlock;
    case Layout::Kind::kGrid:
      return LayoutRule::kGrid;
    case Layout::Kind::kExplicit:
      return LayoutRule::kExplicit;
  }
  throw Error(ErrorCode::kInternal, "unknown layout kind");
}

// The number of replicated piece `k` (0, 1, ...) among those this rank wrote of tensor `t`:
// piece p is written by the member (p + t) mod N of the writer group of N ranks (save_plan.cpp),
// so this rank's are p0, p0 + N, ...
uint32_t replicated_piece_number(std::size_t t, int rank, int group_size, std::size_t k) {
  const auto n = static_cast<std::size_t>(group_size);
  const std::size_t first = (static_cast<std::size_t>(rank) + n - t % n) % n;
  return static_cast<uint32_t>(first + k * n);
}

bool replicated(const SavePlan& plan, std::size_t t) {
  return plan.layouts[t].kind() == Layout::Kind::kReplicated;
}

}  // namespace

GlobalTable make_table(const std::vector<NodeRecord>& nodes, const SavePlan& plan, int world_size) {
  GlobalTable table;
  std::unordered_map<std::string, uint32_t> tensor_of, state_of;
  tensor_of.reserve(plan.tensors.size());
  for (std::size_t i = 0; i < plan.tensors.size(); ++i)
    tensor_of.emplace(plan.tensors[i].key, static_cast<uint32_t>(i));
  for (std::size_t i = 0; i < plan.states.size(); ++i)
    state_of.emplace(plan.states[i].key, static_cast<uint32_t>(i));
  table.tensors.resize(plan.tensors.size());
  table.states.resize(plan.states.size());
  table.nodes.reserve(nodes.size());
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const NodeRecord& record = nodes[n];
    TableNode node{record.kind, NodeValue::kNone, 0};
    const auto id = static_cast<uint32_t>(n);
    if (!record.value_key.empty()) {
      if (auto t = tensor_of.find(record.value_key); t != tensor_of.end()) {
        node.value_kind = NodeValue::kTensor;
        node.value = t->second;
        table.tensors[t->second].node = id;
      } else if (auto s = state_of.find(record.value_key); s != state_of.end()) {
        node.value_kind = NodeValue::kState;
        node.value = s->second;
        table.states[s->second] = {id, plan.states[s->second].scope};
      }
    }
    table.nodes.push_back(std::move(node));
    for (const auto& [name, child] : record.children)
      table.edges.push_back({id, static_cast<uint32_t>(child), name});
    for (const SlotRecord& slot : record.slots)
      table.slots.push_back(
          {id, static_cast<uint32_t>(slot.variable), static_cast<uint32_t>(slot.slot), slot.name});
  }
  for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorRecord& record = plan.tensors[i];
    const Layout& layout = plan.layouts[i];
    TableTensor& t = table.tensors[i];
    t.dtype = record.dtype;
    t.packed = record.packed;
    t.layout = rule_of(layout.kind());
    t.shape = record.shape;
    if (layout.kind() == Layout::Kind::kBlock) t.params = {layout.axis()};
    if (layout.kind() == Layout::Kind::kGrid)
      t.params.assign(layout.grid_dims().begin(), layout.grid_dims().end());
    if (layout.kind() == Layout::Kind::kExplicit)
      for (int r = 0; r < world_size; ++r)
        for (Box& box : layout.boxes_for(r, world_size, record.shape))
          if (!box.empty()) t.boxes.push_back({static_cast<uint32_t>(r), std::move(box)});
    if (t.layout == LayoutRule::kReplicated && shape_volume(t.shape) > 0) {
      const Box whole = Box::whole(t.shape);
      const std::size_t pieces =
          t.packed ? 1
                   : split_box(whole, static_cast<int64_t>(dtype_size(t.dtype)), plan.piece_bytes)
                         .size();
      for (std::size_t p = 0; p < pieces; ++p)
        table.replicated.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(p), 0,
                                    t.packed ? int64_t{0} : int64_t{-1}});
    }
  }
  for (std::size_t s = 0; s < plan.states.size(); ++s)
    if (plan.states[s].scope == SavedScope::kGlobal)
      table.global_blobs.push_back({static_cast<uint32_t>(s),
                                    static_cast<uint32_t>(plan.group.job_ranks.at(
                                        s % static_cast<std::size_t>(plan.group.size))),
                                    0, 0, 0});
  return table;
}

RankRecord make_record(const SavePlan& plan, int rank, int64_t region_offset) {
  RankRecord record;
  record.rank = rank;
  std::size_t current = SIZE_MAX;
  uint32_t piece = 0;
  for (const LocalWrite& w : plan.writes) {
    if (replicated(plan, w.tensor)) continue;
    if (w.tensor != current) {
      current = w.tensor;
      piece = 0;
    }
    const bool packed = plan.tensors[w.tensor].packed;
    for (const PieceRecord& p : w.written.pieces)
      record.pieces.push_back({static_cast<uint32_t>(w.tensor), piece++, p.checksum,
                               packed ? region_offset + p.packed_offset : int64_t{-1}});
  }
  for (const LocalBlob& b : plan.blobs)
    if (plan.states[b.state].scope == SavedScope::kPerRank)
      record.blobs.push_back({static_cast<uint32_t>(b.state), b.blob.checksum,
                              region_offset + b.blob.packed_offset, b.blob.bytes});
  return record;
}

int64_t record_bytes(const SavePlan& plan) {
  int64_t pieces = 0, blobs = 0;
  for (const LocalWrite& w : plan.writes)
    if (!replicated(plan, w.tensor)) pieces += static_cast<int64_t>(w.written.pieces.size());
  for (const LocalBlob& b : plan.blobs)
    if (plan.states[b.state].scope == SavedScope::kPerRank) ++blobs;
  return kRecordHeaderBytes + pieces * kRecordPieceBytes + blobs * kRecordBlobBytes;
}

bool fits(int64_t needed_bytes, int64_t free_bytes) noexcept {
  return free_bytes < 0 || free_bytes >= needed_bytes;
}

void check_free_space(int64_t needed_bytes, int64_t free_bytes, int measured_by,
                      const std::string& path) {
  if (fits(needed_bytes, free_bytes)) return;
  const std::string dir = printable(parent_directory(path));
  throw Error(ErrorCode::kIo,
              "No space left for this checkpoint: its data and cairn's metadata alone take " +
                  std::to_string(needed_bytes) + " bytes (" + human_bytes(needed_bytes) +
                  "), and the file system of '" + dir + "' has " + std::to_string(free_bytes) +
                  " bytes (" + human_bytes(free_bytes) +
                  ") free; nothing was written. Free some space or save elsewhere "
                  "(SessionOptions::check_free_space turns this check off where statvfs does not "
                  "report the room a write can use)",
              {.rank = measured_by, .checkpoint = path, .operation = "save"});
}

std::string global_entries(const SavePlan& plan, int rank, int64_t region_offset) {
  std::vector<int64_t> pieces, blobs;
  std::size_t current = SIZE_MAX, k = 0;
  for (const LocalWrite& w : plan.writes) {
    if (!replicated(plan, w.tensor)) continue;
    if (w.tensor != current) {
      current = w.tensor;
      k = 0;
    }
    const PieceRecord& p = w.written.pieces.front();
    pieces.insert(pieces.end(),
                  {static_cast<int64_t>(w.tensor),
                   static_cast<int64_t>(
                       replicated_piece_number(w.tensor, plan.group.rank, plan.group.size, k++)),
                   static_cast<int64_t>(p.checksum),
                   plan.tensors[w.tensor].packed ? region_offset + p.packed_offset : -1});
  }
  for (const LocalBlob& b : plan.blobs)
    if (plan.states[b.state].scope == SavedScope::kGlobal)
      blobs.insert(blobs.end(), {static_cast<int64_t>(b.state), static_cast<int64_t>(rank),
                                 static_cast<int64_t>(b.blob.checksum),
                                 region_offset + b.blob.packed_offset, b.blob.bytes});
  std::string bytes;
  auto put = [&bytes](const std::vector<int64_t>& values) {
    const auto n = static_cast<int64_t>(values.size());
    bytes.append(reinterpret_cast<const char*>(&n), sizeof n);
    bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
  };
  put(pieces);
  put(blobs);
  return bytes;
}

void merge_global_entries(GlobalTable& table, const std::vector<std::string>& entries) {
  std::vector<char> seen_piece(table.replicated.size(), 0), seen_blob(table.global_blobs.size(), 0);
  // Index of each replicated (tensor, piece) in table.replicated: pieces of a tensor are
  // consecutive, so the first piece's position is enough.
  std::unordered_map<uint32_t, std::size_t> first_piece;
  for (std::size_t i = table.replicated.size(); i-- > 0;)
    first_piece[table.replicated[i].tensor] = i;
  std::unordered_map<uint32_t, std::size_t> blob_of;
  for (std::size_t i = 0; i < table.global_blobs.size(); ++i)
    blob_of.emplace(table.global_blobs[i].state, i);
  auto fail = [](const std::string& what) {
    throw Error(ErrorCode::kInternal, "the ranks' save plans disagree: " + what,
                {.operation = "assemble table"});
  };
  for (const std::string& bytes : entries) {
    std::size_t at = 0;
    auto take = [&](std::vector<int64_t>& values) {
      int64_t n = 0;
      if (bytes.size() - at < sizeof n) fail("truncated entries");
      std::copy_n(bytes.data() + at, sizeof n, reinterpret_cast<char*>(&n));
      at += sizeof n;
      if (n < 0 || static_cast<std::size_t>(n) > (bytes.size() - at) / sizeof(int64_t))
        fail("truncated entries");
      values.resize(static_cast<std::size_t>(n));
      std::copy_n(bytes.data() + at, values.size() * sizeof(int64_t),
                  reinterpret_cast<char*>(values.data()));
      at += values.size() * sizeof(int64_t);
    };
    std::vector<int64_t> pieces, blobs;
    take(pieces);
    take(blobs);
    for (std::size_t i = 0; i + 4 <= pieces.size(); i += 4) {
      const auto it = first_piece.find(static_cast<uint32_t>(pieces[i]));
      if (it == first_piece.end()) fail("a replicated piece of an unknown tensor");
      const std::size_t slot = it->second + static_cast<std::size_t>(pieces[i + 1]);
      if (slot >= table.replicated.size() ||
          table.replicated[slot].tensor != static_cast<uint32_t>(pieces[i]) || seen_piece[slot])
        fail("replicated piece " + std::to_string(pieces[i + 1]) + " of tensor " +
             std::to_string(pieces[i]));
      seen_piece[slot] = 1;
      table.replicated[slot].checksum = static_cast<uint64_t>(pieces[i + 2]);
      table.replicated[slot].packed_offset = pieces[i + 3];
    }
    for (std::size_t i = 0; i + 5 <= blobs.size(); i += 5) {
      const auto it = blob_of.find(static_cast<uint32_t>(blobs[i]));
      if (it == blob_of.end() || seen_blob[it->second]) fail("a global state's blob");
      seen_blob[it->second] = 1;
      TableBlob& blob = table.global_blobs[it->second];
      blob.writer = static_cast<uint32_t>(blobs[i + 1]);
      blob.checksum = static_cast<uint64_t>(blobs[i + 2]);
      blob.packed_offset = blobs[i + 3];
      blob.bytes = blobs[i + 4];
    }
  }
  if (std::find(seen_piece.begin(), seen_piece.end(), 0) != seen_piece.end())
    fail("a replicated piece nobody wrote");
  if (std::find(seen_blob.begin(), seen_blob.end(), 0) != seen_blob.end())
    fail("a global state nobody wrote");
}

}  // namespace cairn::detail
