// SPDX-License-Identifier: Apache-2.0
// Format 2.x's layout rules (which writer wrote which box, and its pieces) and the in-memory
// Manifest built from a table and the records a reader needs.
#include <algorithm>
#include <limits>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"
#include "storage/keys.hpp"
#include "storage/schema.hpp"
#include "storage/table.hpp"
#include "storage/table_internal.hpp"

namespace cairn {
namespace detail {
namespace {

constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();

int64_t saturating_mul(int64_t a, int64_t b) {
  int64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? kSaturated : out;
}

// The part of a block split that index `x` (0 <= x < extent) falls in: the inverse of
// block_range(extent, parts, part).
int block_owner(int64_t extent, int parts, int64_t x) {
  const int64_t q = extent / parts, extra = extent % parts;
  const int64_t wide = extra * (q + 1);  // the first `extra` parts have q + 1 indices
  if (x < wide) return static_cast<int>(x / (q + 1));
  return static_cast<int>(extra + (x - wide) / q);
}

std::size_t escaped_size(const std::string& name) {
  std::size_t n = name.size();
  for (char c : name) n += (c == '.' || c == '/') ? 1 : 0;
  return n;
}

}  // namespace

std::string packed_range_problem(int64_t offset, int64_t bytes, int64_t packed_bytes) {
  if (offset >= 0 && bytes >= 0 && offset <= packed_bytes && bytes <= packed_bytes - offset)
    return {};
  return "packed range [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
         ") lies outside the packed data (" + std::to_string(packed_bytes) + " bytes)";
}

int64_t box_piece_count(const TableTensor& t, const Box& box, int64_t piece_bytes) {
  if (box.rank() == 0) return 1;
  if (box.empty()) return 0;
  if (t.packed) return 1;
  // split_box's arithmetic (docs/format.md, "Pieces"), counting instead of cutting.
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  int split = static_cast<int>(box.rank()) - 1;
  int64_t slice_bytes = esize;
  while (split > 0) {
    int64_t wider = 0;
    if (__builtin_mul_overflow(slice_bytes, box.count[static_cast<std::size_t>(split)], &wider) ||
        wider > piece_bytes)
      break;
    slice_bytes = wider;
    --split;
  }
  const int64_t per_piece = std::max<int64_t>(1, piece_bytes / slice_bytes);
  const int64_t along = box.count[static_cast<std::size_t>(split)];
  int64_t pieces = along / per_piece + (along % per_piece ? 1 : 0);
  for (int d = 0; d < split; ++d)
    pieces = saturating_mul(pieces, box.count[static_cast<std::size_t>(d)]);
  return pieces;
}

std::vector<std::string> table_paths(const GlobalTable& table, const std::string& ckpt) {
  const std::size_t n = table.nodes.size();
  constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  // The first incoming edge and the first eligible slot record of every node.
  std::vector<uint64_t> first_edge(n, kNone), first_slot(n, kNone);
  for (std::size_t e = 0; e < table.edges.size(); ++e)
    if (first_edge[table.edges[e].child] == kNone) first_edge[table.edges[e].child] = e;
  for (std::size_t s = 0; s < table.slots.size(); ++s) {
    const TableSlot& slot = table.slots[s];
    if (slot.variable < slot.slot && slot.optimizer < slot.slot && first_slot[slot.slot] == kNone)
      first_slot[slot.slot] = s;
  }
  // Lengths first: a few kilobytes of hostile table can describe paths of terabytes.
  std::vector<int64_t> length(n, 0);
  int64_t total = 0;
  for (std::size_t i = 1; i < n; ++i) {
    int64_t len = 0;
    if (first_edge[i] != kNone) {
      const TableEdge& e = table.edges[first_edge[i]];
      if (e.parent >= i)
        table_corrupt(ckpt, "node " + std::to_string(i),
                      "node " + std::to_string(i) + "'s first incoming edge '" + e.name +
                          "' comes from node " + std::to_string(e.parent) +
                          ", which is not before it");
      len = length[e.parent] + (e.parent == 0 ? 0 : 1) + static_cast<int64_t>(escaped_size(e.name));
    } else if (first_slot[i] != kNone) {
      const TableSlot& s = table.slots[first_slot[i]];
      len = length[s.variable] + 17 + length[s.optimizer] + 1 +
            static_cast<int64_t>(escaped_size(s.name));  // "/.OPTIMIZER_SLOT/" is 17 bytes
    } else {
      table_corrupt(ckpt, "node " + std::to_string(i),
                    "node " + std::to_string(i) + " (kind '" + table.nodes[i].kind +
                        "') has no path: no incoming edge, and it is no slot of earlier nodes");
    }
    if (len > kMaxTotalPathBytes || total > kMaxTotalPathBytes - len)
      table_corrupt(ckpt, "node " + std::to_string(i),
                    "the object paths total more than " + std::to_string(kMaxTotalPathBytes) +
                        " bytes, more than this reader accepts");
    length[i] = len;
    total += len;
  }
  std::vector<std::string> paths(n);
  for (std::size_t i = 1; i < n; ++i) {
    if (first_edge[i] != kNone) {
      const TableEdge& e = table.edges[first_edge[i]];
      paths[i] = child_path(paths[e.parent], e.name);
    } else {
      const TableSlot& s = table.slots[first_slot[i]];
      paths[i] = slot_path(paths[s.variable], paths[s.optimizer], s.name);
    }
  }
  return paths;
}

std::string tensor_key(const GlobalTable& table, const std::vector<std::string>& paths,
                       std::size_t tensor) {
  return variable_key(paths[table.tensors[tensor].node]);
}

std::string state_key_of(const GlobalTable& table, const std::vector<std::string>& paths,
                         std::size_t state) {
  return state_key(paths[table.states[state].node]);
}

std::string layout_description(const TableTensor& t) {
  switch (t.layout) {
    case LayoutRule::kReplicated:
      return "replicated";
    case LayoutRule::kBlock:
      return Layout::block(t.params.empty() ? 0 : static_cast<int>(t.params[0])).describe();
    case LayoutRule::kGrid: {
      std::vector<int> grid(t.params.begin(), t.params.end());
      std::string text = "grid(";
      for (std::size_t i = 0; i < grid.size(); ++i)
        text += (i ? "x" : "") + std::to_string(grid[i]);
      return text + ")";
    }
    case LayoutRule::kExplicit:
      return "explicit(" + std::to_string(t.boxes.size()) + " boxes)";
  }
  return "unknown";
}

}  // namespace detail

Layout table_layout(const TableTensor& t, int world_size) {
  switch (t.layout) {
    case LayoutRule::kReplicated:
      return Layout::replicated();
    case LayoutRule::kBlock:
      return Layout::block(static_cast<int>(t.params.at(0)));
    case LayoutRule::kGrid:
      return Layout::grid(std::vector<int>(t.params.begin(), t.params.end()));
    case LayoutRule::kExplicit: {
      std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(world_size));
      for (const TableBox& b : t.boxes) boxes.at(b.rank).push_back(b.box);
      return Layout::explicit_boxes(std::move(boxes));
    }
  }
  return Layout::replicated();
}

std::optional<Box> detail::rule_writer_box(const TableTensor& t, int writer, int world_size) {
  switch (t.layout) {
    case LayoutRule::kBlock: {
      if (t.shape.empty()) return writer == 0 ? std::optional<Box>(Box{}) : std::nullopt;
      const auto axis = static_cast<std::size_t>(t.params.at(0));
      const auto [begin, end] = block_range(t.shape.at(axis), world_size, writer);
      if (begin == end) return std::nullopt;
      Box box = Box::whole(t.shape);
      box.offset[axis] = begin;
      box.count[axis] = end - begin;
      return box;
    }
    case LayoutRule::kGrid: {
      Box box = Box::whole(t.shape);
      int remaining = writer;  // row-major: the last grid axis varies fastest
      for (std::size_t axis = t.params.size(); axis-- > 0;) {
        const int g = static_cast<int>(t.params[axis]);
        const auto [begin, end] = block_range(t.shape.at(axis), g, remaining % g);
        remaining /= g;
        if (begin == end) return std::nullopt;
        box.offset[axis] = begin;
        box.count[axis] = end - begin;
      }
      return box;
    }
    case LayoutRule::kReplicated:
    case LayoutRule::kExplicit:
      break;
  }
  return std::nullopt;
}

std::vector<Box> writer_boxes(const TableTensor& t, int writer, int world_size) {
  std::vector<Box> out;
  detail::for_each_writer_box(t, writer, world_size, [&](const Box& box) { out.push_back(box); });
  return out;
}

std::vector<Box> box_pieces(const TableTensor& t, const Box& box, int64_t piece_bytes) {
  if (t.packed) return box.empty() ? std::vector<Box>{} : std::vector<Box>{box};
  return split_box(box, static_cast<int64_t>(dtype_size(t.dtype)), piece_bytes);
}

namespace detail {
namespace {

// Calls `visit(int writer)` for each writer whose rule box of `t` intersects `region`, in
// increasing order, without allocating (a restore asks once per local box of every tensor);
// explicit layouts, whose writers repeat and come in any order, are left to the caller.
template <class Visit>
void visit_rule_writers(const TableTensor& t, const Box& region, int world_size, Visit&& visit) {
  const std::size_t k = t.shape.size();
  // The part of the region inside the shape; nothing intersects an empty one.
  int64_t lo[kMaxAxes], hi[kMaxAxes];
  for (std::size_t d = 0; d < k; ++d) {
    lo[d] = std::clamp<int64_t>(region.offset[d], 0, t.shape[d]);
    hi[d] = std::clamp<int64_t>(region.offset[d] + region.count[d], lo[d], t.shape[d]);
    if (hi[d] == lo[d]) return;
  }
  switch (t.layout) {
    case LayoutRule::kReplicated:
    case LayoutRule::kExplicit:
      return;
    case LayoutRule::kBlock: {
      if (k == 0) return visit(0);
      const auto axis = static_cast<std::size_t>(t.params.at(0));
      const int first = block_owner(t.shape[axis], world_size, lo[axis]);
      const int last = block_owner(t.shape[axis], world_size, hi[axis] - 1);
      for (int w = first; w <= last; ++w) visit(w);
      return;
    }
    case LayoutRule::kGrid: {
      // The grid coordinates intersecting the region form a sub-grid; its cells in row-major
      // order are increasing ranks.
      const std::size_t g = t.params.size();
      int first[kMaxAxes], last[kMaxAxes], at[kMaxAxes];
      for (std::size_t d = 0; d < g; ++d) {
        const int cells = static_cast<int>(t.params[d]);
        first[d] = at[d] = block_owner(t.shape[d], cells, lo[d]);
        last[d] = block_owner(t.shape[d], cells, hi[d] - 1);
      }
      while (true) {
        int rank = 0;
        for (std::size_t d = 0; d < g; ++d) rank = rank * static_cast<int>(t.params[d]) + at[d];
        visit(rank);
        std::size_t d = g;
        while (d > 0 && at[d - 1] == last[d - 1]) {
          at[d - 1] = first[d - 1];
          --d;
        }
        if (d == 0) return;
        ++at[d - 1];
      }
    }
  }
}

void check_region_axes(const TableTensor& t, const Box& region) {
  if (t.shape.size() > kMaxAxes)  // the visitor's arrays; decoded tables are checked already
    throw Error(ErrorCode::kInvalidArgument, "shape " + shape_to_string(t.shape) +
                                                 " has more than " + std::to_string(kMaxAxes) +
                                                 " axes");
  // Rules as the decoder checks them: a block axis inside the shape, no more grid axes than it.
  const bool bad_block =
      t.layout == LayoutRule::kBlock && !t.shape.empty() &&
      (t.params.empty() || t.params[0] < 0 || t.params[0] >= static_cast<int64_t>(t.shape.size()));
  const bool bad_grid = t.layout == LayoutRule::kGrid && t.params.size() > t.shape.size();
  if (bad_block || bad_grid)
    throw Error(ErrorCode::kInvalidArgument,
                "layout parameters that do not fit shape " + shape_to_string(t.shape));
  if (region.rank() != t.shape.size() || region.offset.size() != t.shape.size())
    throw Error(ErrorCode::kInvalidArgument,
                "region " + region.to_string() + " does not have the " +
                    std::to_string(t.shape.size()) + " axes of shape " + shape_to_string(t.shape));
}

}  // namespace
}  // namespace detail

std::vector<int> writers_intersecting(const TableTensor& t, const Box& region, int world_size) {
  detail::check_region_axes(t, region);
  std::vector<int> out;
  if (t.layout != LayoutRule::kExplicit) {
    detail::visit_rule_writers(t, region, world_size, [&](int w) { out.push_back(w); });
    return out;
  }
  for (const TableBox& b : t.boxes)
    if (intersect(b.box, region)) out.push_back(static_cast<int>(b.rank));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void append_writers_intersecting(const TableTensor& t, const Box& region, int world_size,
                                 std::vector<int>& out) {
  detail::check_region_axes(t, region);
  auto append = [&](int w) {
    if (out.empty() || out.back() != w) out.push_back(w);
  };
  if (t.layout != LayoutRule::kExplicit) {
    detail::visit_rule_writers(t, region, world_size, append);
    return;
  }
  for (const TableBox& b : t.boxes)
    if (intersect(b.box, region)) append(static_cast<int>(b.rank));
}

Manifest manifest_from_header(const Header& header) {
  Manifest m;
  m.format_major = header.format_major;
  m.format_minor = header.format_minor;
  m.library_version = header.library_version;
  m.world_size = header.world_size;
  m.save_counter = header.save_counter;
  m.created_unix = header.created_unix;
  m.packed_bytes = header.packed_bytes;
  return m;
}

Manifest manifest_from_table(const Header& header, const GlobalTable& table,
                             std::vector<std::string> paths) {
  Manifest m = manifest_from_header(header);
  if (paths.size() != table.nodes.size()) paths = detail::table_paths(table, "");
  m.nodes.resize(table.nodes.size());
  for (std::size_t i = 0; i < table.nodes.size(); ++i) {
    NodeRecord& n = m.nodes[i];
    n.kind = table.nodes[i].kind;
    n.path = std::move(paths[i]);
    if (table.nodes[i].value_kind == NodeValue::kTensor) n.value_key = detail::variable_key(n.path);
    if (table.nodes[i].value_kind == NodeValue::kState) n.value_key = detail::state_key(n.path);
  }
  for (const TableEdge& e : table.edges)
    m.nodes[e.parent].children.emplace_back(e.name, static_cast<int64_t>(e.child));
  for (const TableSlot& s : table.slots)
    m.nodes[s.optimizer].slots.push_back(
        {static_cast<int64_t>(s.variable), s.name, static_cast<int64_t>(s.slot)});

  // Room for every record at once: a regrowing vector of 20,000 records copies megabytes into
  // fresh memory several times.
  m.tensors.reserve(table.tensors.size());
  m.states.reserve(table.states.size());
  std::size_t next_piece = 0;
  // Most tensors share a few layouts: a description is built once per run of equal rules.
  const TableTensor* described = nullptr;
  std::string description;
  for (std::size_t i = 0; i < table.tensors.size(); ++i) {
    const TableTensor& t = table.tensors[i];
    if (!described || t.layout != described->layout || t.params != described->params ||
        t.layout == LayoutRule::kExplicit) {
      description = detail::layout_description(t);
      described = &t;
    }
    TensorRecord r;
    r.key = m.nodes[t.node].value_key;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.layout = description;
    r.packed = t.packed;
    if (!t.packed) r.dataset = detail::schema::tensor_dataset(r.key);
    if (t.layout == LayoutRule::kReplicated) {
      // A replicated tensor is written piece by piece, each piece a box of its own.
      const std::vector<Box> pieces = box_pieces(t, Box::whole(t.shape), header.piece_bytes);
      for (std::size_t p = 0; p < pieces.size(); ++p) {
        const TablePiece& e = table.replicated.at(next_piece++);
        const int writer = static_cast<int>((p + i) % static_cast<std::size_t>(header.world_size));
        r.boxes.push_back(
            {writer, pieces[p], {PieceRecord{pieces[p], e.checksum, e.packed_offset}}});
      }
    }
    m.tensors.push_back(std::move(r));
  }
  std::size_t next_blob = 0;
  for (std::size_t i = 0; i < table.states.size(); ++i) {
    StateRecord s{m.nodes[table.states[i].node].value_key, table.states[i].scope, {}};
    if (s.scope == SavedScope::kGlobal) {
      const TableBlob& b = table.global_blobs.at(next_blob++);
      s.blobs.push_back({static_cast<int>(b.writer), b.packed_offset, b.bytes, b.checksum});
    }
    m.states.push_back(std::move(s));
  }
  return m;
}

void add_record(Manifest& manifest, const GlobalTable& table, const Header& header,
                const RankRecord& record) {
  std::size_t next = 0;
  auto fail = [&](const std::string& what) {
    detail::record_corrupt("", record.rank, "", what + " (record does not match the table)");
  };
  for (std::size_t i = 0; i < table.tensors.size(); ++i) {
    const TableTensor& t = table.tensors[i];
    if (t.layout == LayoutRule::kReplicated) continue;
    detail::for_each_writer_box(t, record.rank, header.world_size, [&](const Box& box) {
      const int64_t count = detail::box_piece_count(t, box, header.piece_bytes);
      if (count > static_cast<int64_t>(record.pieces.size() - next))
        fail("too few pieces for " + manifest.tensors.at(i).key);
      WrittenBox written{record.rank, box, {}};
      written.pieces.reserve(static_cast<std::size_t>(count));
      if (t.packed && count == 1) {
        // A packed box is one piece, the box itself: taken as it is, without box_pieces()
        // building a list of one copy for each of 20,000 tensors.
        const RecordPiece& e = record.pieces[next++];
        written.pieces.push_back({box, e.checksum, e.packed_offset});
      } else {
        for (Box& piece : box_pieces(t, box, header.piece_bytes)) {
          const RecordPiece& e = record.pieces[next++];
          written.pieces.push_back({std::move(piece), e.checksum, e.packed_offset});
        }
      }
      manifest.tensors.at(i).boxes.push_back(std::move(written));
    });
  }
  if (next != record.pieces.size()) fail("too many pieces");
  std::size_t blob = 0;
  for (std::size_t i = 0; i < table.states.size(); ++i) {
    if (table.states[i].scope != SavedScope::kPerRank) continue;
    if (blob >= record.blobs.size()) fail("too few blobs");
    const RecordBlob& b = record.blobs[blob++];
    manifest.states.at(i).blobs.push_back({record.rank, b.packed_offset, b.bytes, b.checksum});
  }
  if (blob != record.blobs.size()) fail("too many blobs");
}

}  // namespace cairn
