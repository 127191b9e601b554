// SPDX-License-Identifier: Apache-2.0
// The global table of format 2.x (binary): encode, decode and every check of docs/format.md's
// "Table consistency".
#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"
#include "storage/byte_io.hpp"
#include "storage/keys.hpp"
#include "storage/table.hpp"
#include "storage/table_internal.hpp"

namespace cairn {
namespace {

constexpr char kTableMagic[] = "CAIRNTAB";
constexpr uint64_t kPreambleBytes = 16;
constexpr uint64_t kDirectoryEntryBytes = 24;

enum SectionId : uint32_t {
  kStrings = 1,
  kNodes = 2,
  kEdges = 3,
  kSlots = 4,
  kTensors = 5,
  kDims = 6,
  kBoxes = 7,
  kReplicated = 8,
  kStates = 9,
  kGlobalBlobs = 10,
};
constexpr uint32_t kSectionCount = 10;
// element_bytes of sections 1..10, in id order.
constexpr uint32_t kElementBytes[kSectionCount] = {1, 16, 16, 24, 24, 8, 16, 24, 8, 32};
constexpr const char* kSectionNames[kSectionCount] = {
    "strings", "nodes", "edges",      "slots",  "tensors",
    "dims",    "boxes", "replicated", "states", "global_blobs"};

}  // namespace

namespace detail {

void table_corrupt(const std::string& ckpt, const std::string& key, const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "table: " + what,
              {.checkpoint = ckpt, .key = key, .operation = "decode table"});
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Encoding

namespace {

class StringHeap {
 public:
  std::pair<uint32_t, uint32_t> add(const std::string& s) {
    auto [it, fresh] = where_.try_emplace(s, static_cast<uint32_t>(heap_.size()));
    if (fresh) heap_ += s;
    return {it->second, static_cast<uint32_t>(s.size())};
  }
  const std::string& bytes() const noexcept { return heap_; }

 private:
  std::string heap_;
  std::unordered_map<std::string, uint32_t> where_;
};

}  // namespace

std::string encode_table(const GlobalTable& table) {
  StringHeap strings;
  detail::ByteWriter sections[kSectionCount];
  // The sections whose element count is known up front get their room at once.
  const std::pair<uint32_t, std::size_t> counts[] = {{kNodes, table.nodes.size()},
                                                     {kEdges, table.edges.size()},
                                                     {kSlots, table.slots.size()},
                                                     {kTensors, table.tensors.size()},
                                                     {kReplicated, table.replicated.size()},
                                                     {kStates, table.states.size()},
                                                     {kGlobalBlobs, table.global_blobs.size()}};
  for (const auto& [id, count] : counts) sections[id - 1].reserve(count * kElementBytes[id - 1]);
  auto& nodes = sections[kNodes - 1];
  for (const TableNode& n : table.nodes) {
    const auto [off, len] = strings.add(n.kind);
    nodes.u32(off);
    nodes.u32(len);
    nodes.u8(static_cast<uint8_t>(n.value_kind));
    nodes.zeros(3);
    nodes.u32(n.value);
  }
  auto& edges = sections[kEdges - 1];
  for (const TableEdge& e : table.edges) {
    const auto [off, len] = strings.add(e.name);
    edges.u32(e.parent);
    edges.u32(e.child);
    edges.u32(off);
    edges.u32(len);
  }
  auto& slots = sections[kSlots - 1];
  for (const TableSlot& s : table.slots) {
    const auto [off, len] = strings.add(s.name);
    slots.u32(s.optimizer);
    slots.u32(s.variable);
    slots.u32(s.slot);
    slots.u32(off);
    slots.u32(len);
    slots.zeros(4);
  }
  auto& tensors = sections[kTensors - 1];
  auto& dims = sections[kDims - 1];
  auto& boxes = sections[kBoxes - 1];
  uint32_t n_dims = 0, n_boxes = 0;
  for (std::size_t i = 0; i < table.tensors.size(); ++i) {
    const TableTensor& t = table.tensors[i];
    const uint32_t shape_at = n_dims;
    for (int64_t e : t.shape) dims.i64(e), ++n_dims;
    uint32_t param = 0, param_count = 0;
    if (t.layout == LayoutRule::kBlock || t.layout == LayoutRule::kGrid) {
      param = n_dims;
      param_count = static_cast<uint32_t>(t.params.size());
      for (int64_t p : t.params) dims.i64(p), ++n_dims;
    } else if (t.layout == LayoutRule::kExplicit) {
      param = n_boxes;
      param_count = static_cast<uint32_t>(t.boxes.size());
      for (const TableBox& b : t.boxes) {
        boxes.u32(static_cast<uint32_t>(i));
        boxes.u32(b.rank);
        boxes.u32(n_dims);
        boxes.zeros(4);
        for (int64_t v : b.box.offset) dims.i64(v), ++n_dims;
        for (int64_t v : b.box.count) dims.i64(v), ++n_dims;
        ++n_boxes;
      }
    }
    tensors.u32(t.node);
    tensors.u8(static_cast<uint8_t>(t.dtype));
    tensors.u8(t.packed ? 1 : 0);
    tensors.u8(static_cast<uint8_t>(t.layout));
    tensors.u8(static_cast<uint8_t>(t.shape.size()));
    tensors.u32(shape_at);
    tensors.u32(param);
    tensors.u32(param_count);
    tensors.zeros(4);
  }
  auto& replicated = sections[kReplicated - 1];
  for (const TablePiece& p : table.replicated) {
    replicated.u32(p.tensor);
    replicated.u32(p.piece);
    replicated.u64(p.checksum);
    replicated.i64(p.packed_offset);
  }
  auto& states = sections[kStates - 1];
  for (const TableState& s : table.states) {
    states.u32(s.node);
    states.u8(s.scope == SavedScope::kPerRank ? 0 : 1);
    states.zeros(3);
  }
  auto& blobs = sections[kGlobalBlobs - 1];
  for (const TableBlob& b : table.global_blobs) {
    blobs.u32(b.state);
    blobs.u32(b.writer);
    blobs.u64(b.checksum);
    blobs.i64(b.packed_offset);
    blobs.i64(b.bytes);
  }
  sections[kStrings - 1].bytes(strings.bytes());

  detail::ByteWriter out;
  std::size_t total = kPreambleBytes + kDirectoryEntryBytes * kSectionCount;
  for (const auto& section : sections) total += section.size();
  out.reserve(total);
  out.bytes(std::string_view(kTableMagic, 8));
  out.u32(static_cast<uint32_t>(kFormatMajor));
  out.u32(kSectionCount);
  uint64_t offset = kPreambleBytes + kDirectoryEntryBytes * kSectionCount;
  for (uint32_t id = 1; id <= kSectionCount; ++id) {
    const uint64_t size = sections[id - 1].size();
    out.u32(id);
    out.u32(kElementBytes[id - 1]);
    out.u64(offset);
    out.u64(size / kElementBytes[id - 1]);
    offset += size;
  }
  for (auto& s : sections) out.bytes(s.str());
  return std::move(out.str());
}

// ---------------------------------------------------------------------------------------------
// Decoding

namespace {

struct Section {
  uint64_t offset = 0;
  uint64_t element_bytes = 0;
  uint64_t count = 0;
  uint64_t at(uint64_t i) const { return offset + i * element_bytes; }
};

// The key of a tensor's or a state's value, spelled out only for an error message: a table of
// 20,000 tensors decodes without building one.
struct ValueKey {
  const std::vector<std::string>* paths;
  uint32_t node;
  bool state;
  std::string text() const {
    return state ? detail::state_key((*paths)[node]) : detail::variable_key((*paths)[node]);
  }
};

class TableDecoder {
 public:
  TableDecoder(std::string_view bytes, const Header& header, const std::string& ckpt)
      : r_(bytes, [this](const std::string& what) { corrupt("", what); }),
        header_(header),
        ckpt_(ckpt) {}

  GlobalTable decode(std::vector<std::string>* paths) {
    read_directory();
    read_graph();
    paths_ = detail::table_paths(t_, ckpt_);
    read_tensors();
    if (explicit_boxes_ != sec(kBoxes).count)
      corrupt("", "the boxes section holds " + std::to_string(sec(kBoxes).count) +
                      " boxes, but the explicit tensors list " + std::to_string(explicit_boxes_));
    read_states();
    check_values();
    read_replicated();
    read_global_blobs();
    if (paths) *paths = std::move(paths_);
    return std::move(t_);
  }

 private:
  [[noreturn]] void corrupt(const std::string& key, const std::string& what) const {
    detail::table_corrupt(ckpt_, key, what);
  }
  [[noreturn]] void corrupt(const ValueKey& key, const std::string& what) const {
    corrupt(key.text(), what);
  }
  // An unknown code: damage in a file of a version this reader knows, kVersion in a newer minor.
  [[noreturn]] void unknown(const std::string& key, const std::string& what) const {
    if (header_.format_major == kFormatMajor && header_.format_minor > kNewestFormatMinor)
      throw Error(ErrorCode::kVersion,
                  what + " is unknown to this reader (format " +
                      format_version_text(kFormatMajor, kNewestFormatMinor) +
                      "); the checkpoint is format " +
                      format_version_text(header_.format_major, header_.format_minor) +
                      ", written by a newer cairn: upgrade cairn to read it",
                  {.checkpoint = ckpt_, .key = key, .operation = "decode table"});
    corrupt(key, "unknown " + what);
  }
  [[noreturn]] void unknown(const ValueKey& key, const std::string& what) const {
    unknown(key.text(), what);
  }

  void read_directory() {
    if (r_.size() < kPreambleBytes)
      corrupt("", "the table has " + std::to_string(r_.size()) + " bytes, fewer than its " +
                      std::to_string(kPreambleBytes) + "-byte preamble");
    if (r_.view(0, 8) != std::string_view(kTableMagic, 8)) corrupt("", "bad magic (not CAIRNTAB)");
    const uint32_t major = r_.u32(8);
    if (static_cast<int64_t>(major) != header_.format_major)
      corrupt("", "table of major version " + std::to_string(major) + " in a format " +
                      format_version_text(header_.format_major, header_.format_minor) + " file");
    const uint64_t count = r_.u32(12);
    if (count > (r_.size() - kPreambleBytes) / kDirectoryEntryBytes)
      corrupt("", "directory of " + std::to_string(count) + " sections does not fit in " +
                      std::to_string(r_.size()) + " bytes");
    bool seen[kSectionCount] = {};
    std::unordered_set<uint32_t> ids;
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t at = kPreambleBytes + i * kDirectoryEntryBytes;
      const uint32_t id = r_.u32(at);
      if (!ids.insert(id).second)
        corrupt("", "section id " + std::to_string(id) + " appears twice");
      Section s{r_.u64(at + 8), r_.u32(at + 4), r_.u64(at + 16)};
      if (id < 1 || id > kSectionCount) continue;  // a newer minor version's section
      const char* name = kSectionNames[id - 1];
      if (s.element_bytes < kElementBytes[id - 1])
        corrupt("", std::string("section ") + name + " has elements of " +
                        std::to_string(s.element_bytes) + " bytes, expected at least " +
                        std::to_string(kElementBytes[id - 1]));
      // Both checks before any multiplication: count may be 2^60.
      if (s.offset > r_.size() || s.count > (r_.size() - s.offset) / s.element_bytes)
        corrupt("", std::string("section ") + name + " (" + std::to_string(s.count) + " x " +
                        std::to_string(s.element_bytes) + " bytes at " + std::to_string(s.offset) +
                        ") lies outside the table of " + std::to_string(r_.size()) + " bytes");
      if (s.count > std::numeric_limits<uint32_t>::max() && id != kStrings)
        corrupt("", std::string("section ") + name + " has more elements than a u32 indexes");
      sec_[id - 1] = s;
      seen[id - 1] = true;
    }
    for (uint32_t id = 1; id <= kSectionCount; ++id)
      if (!seen[id - 1])
        corrupt("", std::string("section ") + kSectionNames[id - 1] + " is missing");
  }

  const Section& sec(SectionId id) const { return sec_[id - 1]; }

  // `key()` names the referring element in a message.
  template <class KeyFn>
  std::string string_at(uint64_t at, const KeyFn& key, const char* what) {
    const uint64_t off = r_.u32(at), len = r_.u32(at + 4);
    const Section& s = sec(kStrings);
    if (off > s.count || len > s.count - off)
      corrupt(key(), std::string(what) + " string [" + std::to_string(off) + ", +" +
                         std::to_string(len) + ") lies outside the strings section (" +
                         std::to_string(s.count) + " bytes)");
    copied_ += len;
    const uint64_t limit = std::max<uint64_t>(detail::kMinStringBytesLimit,
                                              detail::kMaxStringBytesPerTableByte * r_.size());
    if (copied_ > limit)
      corrupt(key(), "the strings the table refers to total more than " + std::to_string(limit) +
                         " bytes, more than this reader accepts");
    return std::string(r_.view(s.offset + off, len));
  }

  static std::string node_name(uint64_t i) { return "node " + std::to_string(i); }

  void read_graph() {
    const Section& nodes = sec(kNodes);
    if (nodes.count == 0) corrupt("", "the object graph has no nodes");
    t_.nodes.reserve(nodes.count);
    for (uint64_t i = 0; i < nodes.count; ++i) {
      const uint64_t at = nodes.at(i);
      TableNode n;
      n.kind = string_at(
          at, [i] { return node_name(i); }, "the kind");
      const uint8_t vk = r_.u8(at + 8);
      if (vk > 2) unknown(node_name(i), "value kind " + std::to_string(vk));
      n.value_kind = static_cast<NodeValue>(vk);
      n.value = r_.u32(at + 12);
      t_.nodes.push_back(std::move(n));
    }
    if (t_.nodes[0].kind != "root")
      corrupt("", "node 0 is of kind '" + t_.nodes[0].kind + "', expected 'root'");
    const uint64_t n_nodes = nodes.count;
    const Section& edges = sec(kEdges);
    t_.edges.reserve(edges.count);
    for (uint64_t i = 0; i < edges.count; ++i) {
      const uint64_t at = edges.at(i);
      TableEdge e{r_.u32(at), r_.u32(at + 4),
                  string_at(
                      at + 8, [i] { return "edge " + std::to_string(i); }, "a name")};
      if (e.parent >= n_nodes || e.child >= n_nodes)
        corrupt(e.parent < n_nodes ? node_name(e.parent) : "",
                "edge '" + e.name + "' leads from node " + std::to_string(e.parent) + " to node " +
                    std::to_string(e.child) + " of " + std::to_string(n_nodes));
      if (e.name.empty())
        corrupt(node_name(e.parent), "edge " + std::to_string(i) + " to node " +
                                         std::to_string(e.child) + " has an empty name");
      if (!t_.edges.empty() && e.parent < t_.edges.back().parent)
        corrupt(node_name(e.parent), "edges are not grouped by increasing parent: edge " +
                                         std::to_string(i) + " of node " +
                                         std::to_string(e.parent) + " follows one of node " +
                                         std::to_string(t_.edges.back().parent));
      t_.edges.push_back(std::move(e));
    }
    const Section& slots = sec(kSlots);
    t_.slots.reserve(slots.count);
    for (uint64_t i = 0; i < slots.count; ++i) {
      const uint64_t at = slots.at(i);
      TableSlot s{r_.u32(at), r_.u32(at + 4), r_.u32(at + 8),
                  string_at(
                      at + 12, [i] { return "slot " + std::to_string(i); }, "a slot name")};
      if (s.optimizer >= n_nodes || s.variable >= n_nodes || s.slot >= n_nodes)
        corrupt("", "slot '" + s.name + "' (optimizer " + std::to_string(s.optimizer) +
                        ", variable " + std::to_string(s.variable) + ", slot " +
                        std::to_string(s.slot) + ") refers to a node outside the " +
                        std::to_string(n_nodes) + " nodes");
      t_.slots.push_back(std::move(s));
    }
  }

  Box read_box(uint64_t at, std::size_t ndim) const {
    Box b;
    b.offset.reserve(ndim);
    b.count.reserve(ndim);
    for (std::size_t d = 0; d < ndim; ++d) b.offset.push_back(r_.i64(sec(kDims).at(at + d)));
    for (std::size_t d = 0; d < ndim; ++d) b.count.push_back(r_.i64(sec(kDims).at(at + ndim + d)));
    return b;
  }

  void dims_range(uint64_t at, uint64_t n, const ValueKey& key, const char* what) const {
    if (at > sec(kDims).count || n > sec(kDims).count - at)
      corrupt(key, std::string(what) + " [" + std::to_string(at) + ", +" + std::to_string(n) +
                       ") lies outside dims (" + std::to_string(sec(kDims).count) + " values)");
  }

  void read_tensors() {
    const Section& tensors = sec(kTensors);
    const uint64_t n_nodes = t_.nodes.size();
    t_.tensors.reserve(tensors.count);
    for (uint64_t i = 0; i < tensors.count; ++i) {
      const uint64_t at = tensors.at(i);
      TableTensor t;
      t.node = r_.u32(at);
      if (t.node >= n_nodes)
        corrupt("", "tensor " + std::to_string(i) + " belongs to node " + std::to_string(t.node) +
                        " of " + std::to_string(n_nodes));
      const ValueKey key{&paths_, t.node, false};
      const uint8_t dtype = r_.u8(at + 4), storage = r_.u8(at + 5), layout = r_.u8(at + 6),
                    ndim = r_.u8(at + 7);
      if (dtype > static_cast<uint8_t>(DType::kBool))
        unknown(key, "dtype code " + std::to_string(dtype));
      if (storage > 1) unknown(key, "storage code " + std::to_string(storage));
      if (layout > 3) unknown(key, "layout code " + std::to_string(layout));
      if (ndim > kMaxAxes)
        corrupt(key, "tensor of " + std::to_string(ndim) + " axes, more than " +
                         std::to_string(kMaxAxes));
      t.dtype = static_cast<DType>(dtype);
      t.packed = storage == 1;
      t.layout = static_cast<LayoutRule>(layout);
      const uint64_t shape_at = r_.u32(at + 8), param = r_.u32(at + 12),
                     param_count = r_.u32(at + 16);
      dims_range(shape_at, ndim, key, "the shape");
      t.shape.reserve(ndim);
      for (uint64_t d = 0; d < ndim; ++d) t.shape.push_back(r_.i64(sec(kDims).at(shape_at + d)));
      int64_t volume = 1, bytes = 0;
      for (int64_t e : t.shape) {
        if (e < 0) corrupt(key, "shape " + shape_to_string(t.shape) + " has a negative extent");
        if (__builtin_mul_overflow(volume, e, &volume))
          volume = std::numeric_limits<int64_t>::max();
      }
      if (__builtin_mul_overflow(volume, static_cast<int64_t>(dtype_size(t.dtype)), &bytes) ||
          bytes > kMaxTensorBytes)
        corrupt(key, "tensor of shape " + shape_to_string(t.shape) + " holds more than 2^56 bytes");
      read_layout(t, i, param, param_count, key);
      t_.tensors.push_back(std::move(t));
    }
  }

  void read_layout(TableTensor& t, uint64_t index, uint64_t param, uint64_t count,
                   const ValueKey& key) {
    const int world = header_.world_size;
    auto want_count = [&](uint64_t n, const char* layout) {
      if (count != n)
        corrupt(key, std::string(layout) + " layout with " + std::to_string(count) +
                         " parameters, expected " + std::to_string(n));
    };
    switch (t.layout) {
      case LayoutRule::kReplicated:
        want_count(0, "a replicated");
        return;
      case LayoutRule::kBlock: {
        want_count(1, "a block");
        dims_range(param, 1, key, "the block axis");
        const int64_t axis = r_.i64(sec(kDims).at(param));
        // A scalar is not split (writer 0 has it), but its axis still becomes a Layout's int.
        const int64_t limit = t.shape.empty() ? std::numeric_limits<int>::max()
                                              : static_cast<int64_t>(t.shape.size()) - 1;
        if (axis < 0 || axis > limit)
          corrupt(key, "block axis " + std::to_string(axis) + " lies outside shape " +
                           shape_to_string(t.shape));
        t.params = {axis};
        return;
      }
      case LayoutRule::kGrid: {
        if (count < 1 || count > t.shape.size())
          corrupt(key, "grid of " + std::to_string(count) + " axes for shape " +
                           shape_to_string(t.shape));
        dims_range(param, count, key, "the grid");
        int64_t product = 1;
        for (uint64_t d = 0; d < count; ++d) {
          const int64_t g = r_.i64(sec(kDims).at(param + d));
          if (g < 1 || g > world)
            corrupt(key, "grid extent " + std::to_string(g) + " on axis " + std::to_string(d) +
                             " is outside [1, " + std::to_string(world) + "]");
          t.params.push_back(g);
          if (__builtin_mul_overflow(product, g, &product) || product > world) product = -1;
        }
        if (product != world)
          corrupt(key, "grid " + layout_text(t) + " has " +
                           (product < 0 ? std::string("more") : std::to_string(product)) +
                           " cells, but the job had " + std::to_string(world) + " ranks");
        return;
      }
      case LayoutRule::kExplicit:
        read_explicit(t, index, param, count, key);
        return;
    }
  }

  std::string layout_text(const TableTensor& t) const { return detail::layout_description(t); }

  void read_explicit(TableTensor& t, uint64_t index, uint64_t first, uint64_t count,
                     const ValueKey& key) {
    const Section& boxes = sec(kBoxes);
    if (first > boxes.count || count > boxes.count - first)
      corrupt(key, "explicit boxes [" + std::to_string(first) + ", +" + std::to_string(count) +
                       ") lie outside the boxes section (" + std::to_string(boxes.count) + ")");
    explicit_boxes_ += count;
    const std::size_t ndim = t.shape.size();
    int64_t covered = 0;
    t.boxes.reserve(count);
    for (uint64_t b = first; b < first + count; ++b) {
      const uint64_t at = boxes.at(b);
      const uint32_t tensor = r_.u32(at), rank = r_.u32(at + 4);
      const uint64_t dims_at = r_.u32(at + 8);
      if (tensor != index)
        corrupt(key, "explicit box " + std::to_string(b) + " names tensor " +
                         std::to_string(tensor) + ", expected " + std::to_string(index));
      if (rank >= static_cast<uint64_t>(header_.world_size))
        corrupt(key, "explicit box " + std::to_string(b) + " is written by rank " +
                         std::to_string(rank) + " of a " + std::to_string(header_.world_size) +
                         "-rank job");
      dims_range(dims_at, 2 * ndim, key, "an explicit box");
      TableBox tb{rank, read_box(dims_at, ndim)};
      bool inside = true;
      for (std::size_t d = 0; d < ndim; ++d)
        inside = inside && tb.box.offset[d] >= 0 && tb.box.count[d] >= 0 &&
                 tb.box.offset[d] <= t.shape[d] && tb.box.count[d] <= t.shape[d] - tb.box.offset[d];
      if (!inside)
        // Not Box::to_string(): offset + count of a hostile box may overflow.
        corrupt(key, "rank " + std::to_string(rank) + "'s explicit box at " +
                         shape_to_string(tb.box.offset) + " of " + shape_to_string(tb.box.count) +
                         " lies outside shape " + shape_to_string(t.shape));
      covered += tb.box.volume();  // boxes inside the shape: no overflow before the sum exceeds it
      if (covered > shape_volume(t.shape)) covered = shape_volume(t.shape) + 1;
      t.boxes.push_back(std::move(tb));
    }
    check_disjoint(t, key);
    if (covered != shape_volume(t.shape))
      corrupt(key, "explicit boxes cover " + std::to_string(covered) + " of the " +
                       std::to_string(shape_volume(t.shape)) + " elements of shape " +
                       shape_to_string(t.shape));
  }

  // Sorted by their offset on one axis, a box can only overlap the boxes after it that start
  // before it ends there. The axis is the one with the most distinct offsets, so that a tiling
  // along any axis costs O(n log n); only hostile input approaches O(n^2).
  void check_disjoint(const TableTensor& t, const ValueKey& key) const {
    std::vector<const TableBox*> order;
    for (const TableBox& b : t.boxes)
      if (!b.box.empty()) order.push_back(&b);
    if (order.size() < 2) return;
    std::size_t axis = 0, most = 0;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      std::vector<int64_t> offsets;
      for (const TableBox* b : order) offsets.push_back(b->box.offset[d]);
      std::sort(offsets.begin(), offsets.end());
      const auto distinct =
          static_cast<std::size_t>(std::unique(offsets.begin(), offsets.end()) - offsets.begin());
      if (distinct > most) axis = d, most = distinct;
    }
    const bool scalar = t.shape.empty();
    std::sort(order.begin(), order.end(), [&](const TableBox* a, const TableBox* b) {
      return scalar ? false : a->box.offset[axis] < b->box.offset[axis];
    });
    for (std::size_t i = 0; i < order.size(); ++i) {
      const Box& a = order[i]->box;
      const int64_t a_end = scalar ? 1 : a.offset[axis] + a.count[axis];
      for (std::size_t j = i + 1; j < order.size(); ++j) {
        const Box& b = order[j]->box;
        if (!scalar && b.offset[axis] >= a_end) break;
        if (intersect(a, b))
          corrupt(key, "explicit boxes " + a.to_string() + " (rank " +
                           std::to_string(order[i]->rank) + ") and " + b.to_string() + " (rank " +
                           std::to_string(order[j]->rank) + ") overlap");
      }
    }
  }

  void read_states() {
    const Section& states = sec(kStates);
    t_.states.reserve(states.count);
    for (uint64_t i = 0; i < states.count; ++i) {
      const uint64_t at = states.at(i);
      TableState s;
      s.node = r_.u32(at);
      if (s.node >= t_.nodes.size())
        corrupt("", "state " + std::to_string(i) + " belongs to node " + std::to_string(s.node) +
                        " of " + std::to_string(t_.nodes.size()));
      const uint8_t scope = r_.u8(at + 4);
      if (scope > 1)
        unknown(ValueKey{&paths_, s.node, true}, "scope code " + std::to_string(scope));
      s.scope = scope == 0 ? SavedScope::kPerRank : SavedScope::kGlobal;
      t_.states.push_back(s);
    }
  }

  void check_values() {
    for (std::size_t i = 0; i < t_.tensors.size(); ++i) {
      const TableNode& n = t_.nodes[t_.tensors[i].node];
      if (n.value_kind != NodeValue::kTensor || n.value != i)
        corrupt(ValueKey{&paths_, t_.tensors[i].node, false},
                "tensor " + std::to_string(i) + "'s node " + std::to_string(t_.tensors[i].node) +
                    " does not name it as its value");
    }
    for (std::size_t i = 0; i < t_.states.size(); ++i) {
      const TableNode& n = t_.nodes[t_.states[i].node];
      if (n.value_kind != NodeValue::kState || n.value != i)
        corrupt(ValueKey{&paths_, t_.states[i].node, true},
                "state " + std::to_string(i) + "'s node " + std::to_string(t_.states[i].node) +
                    " does not name it as its value");
    }
    // A key is its node's path plus its kind's suffix, and neither suffix ends the other
    // ("...VARIABLE_VALUE", "...STATE"): two keys are equal exactly when their paths and kinds
    // are. Sorting the (path, kind) pairs finds a repeated key without building 20,000 key
    // strings.
    std::vector<std::pair<std::string_view, bool>> keys;  // path, is a state
    keys.reserve(t_.tensors.size() + t_.states.size());
    for (std::size_t i = 0; i < t_.nodes.size(); ++i) {
      const TableNode& n = t_.nodes[i];
      if (n.value_kind == NodeValue::kNone) continue;
      const bool state = n.value_kind == NodeValue::kState;
      const std::size_t limit = state ? t_.states.size() : t_.tensors.size();
      const uint32_t owner = state ? (n.value < limit ? t_.states[n.value].node : 0)
                                   : (n.value < limit ? t_.tensors[n.value].node : 0);
      if (n.value >= limit || owner != i)
        corrupt(paths_[i], node_name(i) + "'s value " + std::string(state ? "state " : "tensor ") +
                               std::to_string(n.value) + " does not belong to it");
      keys.emplace_back(paths_[i], state);
    }
    std::sort(keys.begin(), keys.end());
    if (const auto twice = std::adjacent_find(keys.begin(), keys.end()); twice != keys.end()) {
      const std::string path(twice->first);
      corrupt(twice->second ? detail::state_key(path) : detail::variable_key(path),
              "the key appears twice");
    }
  }

  void packed_range(int64_t offset, int64_t bytes, const ValueKey& key) const {
    const std::string problem = detail::packed_range_problem(offset, bytes, header_.packed_bytes);
    if (!problem.empty()) corrupt(key, problem);
  }

  void read_replicated() {
    const Section& rep = sec(kReplicated);
    uint64_t next = 0;
    auto entry = [&](uint64_t i) {
      const uint64_t at = rep.at(i);
      return TablePiece{r_.u32(at), r_.u32(at + 4), r_.u64(at + 8), r_.i64(at + 16)};
    };
    for (std::size_t i = 0; i < t_.tensors.size(); ++i) {
      const TableTensor& t = t_.tensors[i];
      if (t.layout != LayoutRule::kReplicated) continue;
      const ValueKey key{&paths_, t.node, false};
      const int64_t pieces = detail::box_piece_count(t, Box::whole(t.shape), header_.piece_bytes);
      const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
      for (int64_t p = 0; p < pieces; ++p) {
        if (next >= rep.count)
          corrupt(key, "the replicated section ends before piece " + std::to_string(p) + " of " +
                           std::to_string(pieces));
        const TablePiece e = entry(next);
        if (e.tensor != i || e.piece != static_cast<uint64_t>(p))
          corrupt(key, "replicated entry " + std::to_string(next) + " is piece " +
                           std::to_string(e.piece) + " of tensor " + std::to_string(e.tensor) +
                           ", expected piece " + std::to_string(p) + " of tensor " +
                           std::to_string(i));
        if (t.packed)
          packed_range(e.packed_offset, shape_volume(t.shape) * esize, key);
        else if (e.packed_offset != -1)
          corrupt(key, "dataset piece " + std::to_string(p) + " has packed offset " +
                           std::to_string(e.packed_offset) + ", expected -1");
        t_.replicated.push_back(e);
        ++next;
      }
    }
    if (next < rep.count) {
      const TablePiece e = entry(next);
      corrupt(e.tensor < t_.tensors.size() ? detail::tensor_key(t_, paths_, e.tensor) : "",
              "replicated entry " + std::to_string(next) + " (piece " + std::to_string(e.piece) +
                  " of tensor " + std::to_string(e.tensor) +
                  ") is not a piece of a replicated tensor, or one too many");
    }
  }

  void read_global_blobs() {
    const Section& blobs = sec(kGlobalBlobs);
    uint64_t next = 0;
    for (std::size_t i = 0; i < t_.states.size(); ++i) {
      if (t_.states[i].scope != SavedScope::kGlobal) continue;
      const ValueKey key{&paths_, t_.states[i].node, true};
      if (next >= blobs.count) corrupt(key, "global state has no blob in global_blobs");
      const uint64_t at = blobs.at(next);
      TableBlob b{r_.u32(at), r_.u32(at + 4), r_.u64(at + 8), r_.i64(at + 16), r_.i64(at + 24)};
      if (b.state != i)
        corrupt(key, "global blob " + std::to_string(next) + " is of state " +
                         std::to_string(b.state) + ", expected " + std::to_string(i));
      // A part's writers divide the global state among themselves (one writer group per node).
      const std::vector<int>& group = header_.part_writers;
      const uint64_t writer = group.empty() ? i % static_cast<uint64_t>(header_.world_size)
                                            : static_cast<uint64_t>(group[i % group.size()]);
      if (b.writer != writer)
        corrupt(key, "global blob written by rank " + std::to_string(b.writer) + ", expected " +
                         std::to_string(writer));
      packed_range(b.packed_offset, b.bytes, key);
      t_.global_blobs.push_back(b);
      ++next;
    }
    if (next < blobs.count)
      corrupt("", "global_blobs holds " + std::to_string(blobs.count) + " blobs for " +
                      std::to_string(next) + " global states");
  }

  detail::ByteReader r_;
  const Header& header_;
  const std::string& ckpt_;
  Section sec_[kSectionCount];
  GlobalTable t_;
  std::vector<std::string> paths_;
  uint64_t explicit_boxes_ = 0;
  uint64_t copied_ = 0;  // bytes of strings copied out of the heap
};

}  // namespace

GlobalTable decode_table(std::string_view bytes, const Header& header,
                         const std::string& checkpoint, std::vector<std::string>* paths) {
  if (header.format_major != kFormatMajor)
    detail::table_corrupt(checkpoint, "",
                          "a table in a format " + std::to_string(header.format_major) + "." +
                              std::to_string(header.format_minor) + " file");
  return TableDecoder(bytes, header, checkpoint).decode(paths);
}

}  // namespace cairn
