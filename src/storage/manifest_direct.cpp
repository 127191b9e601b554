// SPDX-License-Identifier: Apache-2.0
// The manifest's direct codec: the JSON of docs/format.md written and read without building a
// JSON document, which for tens of thousands of tensors is most of the cost of a save or restore.
#include <charconv>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "storage/checksum.hpp"
#include "storage/manifest.hpp"
#include "storage/manifest_checks.hpp"

namespace cairn {

using nlohmann::json;

// encode_manifest() writes what encode_manifest_reference() writes, member by member in the same
// (lexicographic) order, without building a document. decode_manifest() reads what cairn writes
// in one pass into the structs and runs the same checks; whatever it does not expect (escapes,
// non-ASCII text, non-integer numbers, missing or repeated members, or any failed check) sends the
// text to the reference decoder, which gives the verdict and the exact error.
namespace {

class JsonWriter {
 public:
  std::string out;
  void raw(std::string_view text) { out.append(text); }
  // Member names here are plain ASCII constants.
  void key(std::string_view name) {
    out += '"';
    out.append(name);
    out += "\":";
  }
  void str(const std::string& value) {
    for (unsigned char c : value)
      if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
        out += json(value).dump();  // escapes and UTF-8 checks exactly as the reference does
        return;
      }
    out += '"';
    out += value;
    out += '"';
  }
  void num(int64_t value) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    out.append(buf, end);
  }
  void ints(const Shape& values) {
    out += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) out += ',';
      num(values[i]);
    }
    out += ']';
  }
  void box(const Box& b) {  // "count" and "offset", the first members of boxes and pieces
    key("count");
    ints(b.count);
    out += ',';
    key("offset");
    ints(b.offset);
  }
  void hex(uint64_t checksum) {
    out += '"';
    out += checksum_to_hex(checksum);
    out += '"';
  }
};

struct Fallback {};  // the direct decoder hands over to the reference decoder

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  char peek() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    if (p_ >= end_) throw Fallback{};
    return *p_;
  }
  void expect(char c) {
    if (peek() != c) throw Fallback{};
    ++p_;
  }
  bool take(char c) {
    if (peek() != c) return false;
    ++p_;
    return true;
  }
  bool at_end() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    return p_ == end_;
  }
  // Printable ASCII strings without escapes only.
  std::string_view view() {
    expect('"');
    const char* begin = p_;
    while (true) {
      if (p_ >= end_) throw Fallback{};
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\' || c < 0x20 || c > 0x7e) throw Fallback{};
      ++p_;
    }
    std::string_view v(begin, static_cast<std::size_t>(p_ - begin));
    ++p_;
    return v;
  }
  std::string str() { return std::string(view()); }
  int64_t integer() {
    peek();
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') throw Fallback{};
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') throw Fallback{};
    uint64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      if (v > (std::numeric_limits<uint64_t>::max() - 9) / 10) throw Fallback{};
      v = v * 10 + static_cast<uint64_t>(*p_ - '0');
      ++p_;
    }
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) throw Fallback{};
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw Fallback{};
    return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }
  Shape ints() {
    // Gathered on the stack and allocated once: shapes and boxes are most of a manifest's arrays.
    int64_t local[8];
    std::size_t n = 0;
    Shape out;
    array([&] {
      const int64_t v = integer();
      if (n < std::size(local))
        local[n++] = v;
      else {
        if (out.empty()) out.assign(local, local + n);
        out.push_back(v);
      }
    });
    if (out.empty()) out.assign(local, local + n);
    return out;
  }
  uint64_t hex() {
    uint64_t v = 0;
    if (!checksum_from_hex(view(), v)) throw Fallback{};
    return v;
  }
  // Calls member(name) for each member; member must consume the value. A member seen twice is
  // handed over (the reference decoder keeps the last one).
  template <class Member>
  void object(Member&& member) {
    expect('{');
    if (take('}')) return;
    do {
      const std::string_view name = view();
      expect(':');
      member(name);
    } while (take(','));
    expect('}');
  }
  template <class Item>
  void array(Item&& item) {
    expect('[');
    if (take(']')) return;
    do item();
    while (take(','));
    expect(']');
  }
  void skip(int depth = 0) {
    if (depth > 64) throw Fallback{};
    const char c = peek();
    if (c == '{')
      object([&](std::string_view) { skip(depth + 1); });
    else if (c == '[')
      array([&] { skip(depth + 1); });
    else if (c == '"')
      view();
    else if (c == '-' || (c >= '0' && c <= '9'))
      integer();
    else if (!literal("true") && !literal("false") && !literal("null"))
      throw Fallback{};
  }

 private:
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }
  const char* p_;
  const char* end_;
};

// Marks members as seen; a repeated or missing required member hands over.
class Seen {
 public:
  void mark(int bit) {
    if (bits_ & (1u << bit)) throw Fallback{};
    bits_ |= 1u << bit;
  }
  void require(unsigned mask) const {
    if ((bits_ & mask) != mask) throw Fallback{};
  }
  bool has(int bit) const { return bits_ & (1u << bit); }

 private:
  unsigned bits_ = 0;
};

constexpr int64_t kNoOffset = std::numeric_limits<int64_t>::min();

// The "count" and "offset" members of boxes and pieces (seen bits 0 and 1).
bool read_box_member(JsonReader& in, std::string_view name, Box& box, Seen& seen) {
  if (name == "count") {
    seen.mark(0);
    box.count = in.ints();
  } else if (name == "offset") {
    seen.mark(1);
    box.offset = in.ints();
  } else {
    return false;
  }
  return true;
}

NodeRecord read_node(JsonReader& in) {
  NodeRecord n;
  Seen seen;
  in.object([&](std::string_view name) {
    if (name == "kind")
      seen.mark(0), n.kind = in.str();
    else if (name == "path")
      seen.mark(1), n.path = in.str();
    else if (name == "children") {
      seen.mark(2);
      in.array([&] {
        in.expect('[');
        std::string edge = in.str();
        in.expect(',');
        const int64_t id = in.integer();
        in.expect(']');
        n.children.emplace_back(std::move(edge), id);
      });
    } else if (name == "slots") {
      seen.mark(3);
      in.array([&] {
        SlotRecord s;
        Seen ss;
        in.object([&](std::string_view m) {
          if (m == "variable")
            ss.mark(0), s.variable = in.integer();
          else if (m == "name")
            ss.mark(1), s.name = in.str();
          else if (m == "slot")
            ss.mark(2), s.slot = in.integer();
          else
            in.skip();
        });
        ss.require(7);
        n.slots.push_back(std::move(s));
      });
    } else if (name == "value")
      seen.mark(4), n.value_key = in.str();
    else
      in.skip();
  });
  seen.require(7);
  return n;
}

PieceRecord read_piece(JsonReader& in) {
  PieceRecord p;
  p.packed_offset = kNoOffset;
  Seen seen;
  in.object([&](std::string_view name) {
    if (read_box_member(in, name, p.box, seen)) return;
    if (name == "xxh3")
      seen.mark(2), p.checksum = in.hex();
    else if (name == "packed_offset")
      seen.mark(3), p.packed_offset = in.integer();
    else
      in.skip();
  });
  seen.require(7);
  return p;
}

WrittenBox read_written_box(JsonReader& in) {
  WrittenBox wb;
  Seen seen;
  int64_t rank = 0;
  in.object([&](std::string_view name) {
    if (read_box_member(in, name, wb.box, seen)) return;
    if (name == "rank")
      seen.mark(2), rank = in.integer();
    else if (name == "pieces")
      seen.mark(3), in.array([&] { wb.pieces.push_back(read_piece(in)); });
    else
      in.skip();
  });
  seen.require(15);
  if (rank < 0 || rank > kMaxWorldSize) throw Fallback{};
  wb.rank = static_cast<int>(rank);
  return wb;
}

TensorRecord read_tensor_record(JsonReader& in) {
  TensorRecord t;
  Seen seen;
  std::string storage, dataset;
  in.object([&](std::string_view name) {
    if (name == "key")
      seen.mark(0), t.key = in.str();
    else if (name == "dtype") {
      seen.mark(1);
      const auto dtype = dtype_from_name(in.view());
      if (!dtype) throw Fallback{};
      t.dtype = *dtype;
    } else if (name == "shape")
      seen.mark(2), t.shape = in.ints();
    else if (name == "layout")
      seen.mark(3), t.layout = in.str();
    else if (name == "storage")
      seen.mark(4), storage = in.str();
    else if (name == "boxes")
      seen.mark(5), in.array([&] { t.boxes.push_back(read_written_box(in)); });
    else if (name == "dataset")
      seen.mark(6), dataset = in.str();
    else
      in.skip();
  });
  seen.require(63);
  if (storage != "packed" && storage != "dataset") throw Fallback{};
  t.packed = storage == "packed";
  if (!t.packed) {
    if (!seen.has(6)) throw Fallback{};
    t.dataset = std::move(dataset);
  }
  for (WrittenBox& wb : t.boxes)
    for (PieceRecord& p : wb.pieces) {
      if (!t.packed)
        p.packed_offset = -1;
      else if (p.packed_offset == kNoOffset)
        throw Fallback{};
    }
  return t;
}

StateRecord read_state_record(JsonReader& in) {
  StateRecord s;
  Seen seen;
  in.object([&](std::string_view name) {
    if (name == "key")
      seen.mark(0), s.key = in.str();
    else if (name == "scope") {
      seen.mark(1);
      const std::string_view scope = in.view();
      if (scope == "per_rank")
        s.scope = SavedScope::kPerRank;
      else if (scope == "global")
        s.scope = SavedScope::kGlobal;
      else
        throw Fallback{};
    } else if (name == "blobs") {
      seen.mark(2);
      in.array([&] {
        StateBlob b;
        Seen bs;
        int64_t rank = 0;
        in.object([&](std::string_view m) {
          if (m == "rank")
            bs.mark(0), rank = in.integer();
          else if (m == "packed_offset")
            bs.mark(1), b.packed_offset = in.integer();
          else if (m == "bytes")
            bs.mark(2), b.bytes = in.integer();
          else if (m == "xxh3")
            bs.mark(3), b.checksum = in.hex();
          else
            in.skip();
        });
        bs.require(15);
        if (rank < 0 || rank > kMaxWorldSize) throw Fallback{};
        b.rank = static_cast<int>(rank);
        s.blobs.push_back(b);
      });
    } else
      in.skip();
  });
  seen.require(7);
  return s;
}

// The checks decode_manifest_reference() makes, on the decoded structs; any failure hands over.
void check_direct(Manifest& m, const std::string& format, const std::string& version,
                  const std::string& ckpt) {
  if (format != "cairn-checkpoint") throw Fallback{};
  const auto dot = version.find('.');
  if (dot == std::string::npos || version.find_first_not_of("0123456789.") != std::string::npos ||
      dot == 0 || dot + 1 == version.size() || version.find('.', dot + 1) != std::string::npos ||
      dot > 6 || version.size() - dot > 7)
    throw Fallback{};
  m.format_major = std::stoi(version.substr(0, dot));
  m.format_minor = std::stoi(version.substr(dot + 1));
  if (m.format_major != kFormatMajor) throw Fallback{};
  if (m.world_size < 1 || m.world_size > kMaxWorldSize || m.packed_bytes < 0) throw Fallback{};
  std::unordered_set<std::string_view> keys;
  keys.reserve(m.tensors.size() + m.states.size());
  for (const TensorRecord& t : m.tensors) {
    for (const WrittenBox& wb : t.boxes)
      if (wb.rank >= m.world_size) throw Fallback{};
    validate_tensor(t, m, ckpt);  // throws cairn::Error, which hands over too
    if (!keys.insert(t.key).second) throw Fallback{};
  }
  for (const StateRecord& s : m.states) {
    for (const StateBlob& b : s.blobs) {
      if (b.rank >= m.world_size) throw Fallback{};
      check_packed_range(b.packed_offset, b.bytes, m.packed_bytes, ckpt, s.key);
    }
    if (!keys.insert(s.key).second) throw Fallback{};
  }
  if (m.nodes.empty() || m.nodes[0].kind != "root") throw Fallback{};
  const auto n_nodes = static_cast<int64_t>(m.nodes.size());
  for (const NodeRecord& n : m.nodes) {
    for (const auto& [name, id] : n.children)
      if (name.empty() || id < 0 || id >= n_nodes) throw Fallback{};
    for (const SlotRecord& s : n.slots)
      if (s.variable < 0 || s.variable >= n_nodes || s.slot < 0 || s.slot >= n_nodes)
        throw Fallback{};
    if (!n.value_key.empty() && !keys.count(n.value_key)) throw Fallback{};
  }
}

Manifest decode_direct(const std::string& text, const std::string& ckpt) {
  Manifest m;
  JsonReader in(text);
  Seen seen;
  std::string format, version;
  int64_t world_size = 0;
  in.object([&](std::string_view name) {
    if (name == "format")
      seen.mark(0), format = in.str();
    else if (name == "format_version")
      seen.mark(1), version = in.str();
    else if (name == "library_version")
      seen.mark(2), m.library_version = in.str();
    else if (name == "world_size")
      seen.mark(3), world_size = in.integer();
    else if (name == "save_counter")
      seen.mark(4), m.save_counter = in.integer();
    else if (name == "created_unix")
      seen.mark(5), m.created_unix = in.integer();
    else if (name == "packed_bytes")
      seen.mark(6), m.packed_bytes = in.integer();
    else if (name == "nodes")
      seen.mark(7), in.array([&] { m.nodes.push_back(read_node(in)); });
    else if (name == "tensors")
      seen.mark(8), in.array([&] { m.tensors.push_back(read_tensor_record(in)); });
    else if (name == "states")
      seen.mark(9), in.array([&] { m.states.push_back(read_state_record(in)); });
    else
      in.skip();
  });
  seen.require(1023);
  if (!in.at_end()) throw Fallback{};
  if (world_size < 1 || world_size > kMaxWorldSize) throw Fallback{};
  m.world_size = static_cast<int>(world_size);
  check_direct(m, format, version, ckpt);
  return m;
}

}  // namespace

std::string encode_manifest(const Manifest& m) {
  JsonWriter w;
  w.out.reserve(4096 + 160 * m.tensors.size() + 64 * m.nodes.size());
  w.raw("{");
  w.key("created_unix");
  w.num(m.created_unix);
  w.raw(",\"format\":\"cairn-checkpoint\",");
  w.key("format_version");
  w.str(std::to_string(m.format_major) + "." + std::to_string(m.format_minor));
  w.raw(",");
  w.key("library_version");
  w.str(m.library_version);
  w.raw(",\"nodes\":[");
  for (std::size_t i = 0; i < m.nodes.size(); ++i) {
    const NodeRecord& n = m.nodes[i];
    if (i) w.raw(",");
    w.raw("{\"children\":[");
    for (std::size_t c = 0; c < n.children.size(); ++c) {
      w.raw(c ? ",[" : "[");
      w.str(n.children[c].first);
      w.raw(",");
      w.num(n.children[c].second);
      w.raw("]");
    }
    w.raw("],");
    w.key("kind");
    w.str(n.kind);
    w.raw(",");
    w.key("path");
    w.str(n.path);
    if (!n.slots.empty()) {
      w.raw(",\"slots\":[");
      for (std::size_t s = 0; s < n.slots.size(); ++s) {
        w.raw(s ? ",{" : "{");
        w.key("name");
        w.str(n.slots[s].name);
        w.raw(",");
        w.key("slot");
        w.num(n.slots[s].slot);
        w.raw(",");
        w.key("variable");
        w.num(n.slots[s].variable);
        w.raw("}");
      }
      w.raw("]");
    }
    if (!n.value_key.empty()) {
      w.raw(",");
      w.key("value");
      w.str(n.value_key);
    }
    w.raw("}");
  }
  w.raw("],");
  w.key("packed_bytes");
  w.num(m.packed_bytes);
  w.raw(",");
  w.key("save_counter");
  w.num(m.save_counter);
  w.raw(",\"states\":[");
  for (std::size_t i = 0; i < m.states.size(); ++i) {
    const StateRecord& s = m.states[i];
    w.raw(i ? ",{\"blobs\":[" : "{\"blobs\":[");
    for (std::size_t b = 0; b < s.blobs.size(); ++b) {
      const StateBlob& blob = s.blobs[b];
      w.raw(b ? ",{" : "{");
      w.key("bytes");
      w.num(blob.bytes);
      w.raw(",");
      w.key("packed_offset");
      w.num(blob.packed_offset);
      w.raw(",");
      w.key("rank");
      w.num(blob.rank);
      w.raw(",");
      w.key("xxh3");
      w.hex(blob.checksum);
      w.raw("}");
    }
    w.raw("],");
    w.key("key");
    w.str(s.key);
    w.raw(",");
    w.key("scope");
    w.raw(s.scope == SavedScope::kPerRank ? "\"per_rank\"}" : "\"global\"}");
  }
  w.raw("],\"tensors\":[");
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorRecord& t = m.tensors[i];
    w.raw(i ? ",{\"boxes\":[" : "{\"boxes\":[");
    for (std::size_t b = 0; b < t.boxes.size(); ++b) {
      const WrittenBox& wb = t.boxes[b];
      w.raw(b ? ",{" : "{");
      w.box(wb.box);
      w.raw(",\"pieces\":[");
      for (std::size_t p = 0; p < wb.pieces.size(); ++p) {
        const PieceRecord& piece = wb.pieces[p];
        w.raw(p ? ",{" : "{");
        w.box(piece.box);
        if (t.packed) {
          w.raw(",");
          w.key("packed_offset");
          w.num(piece.packed_offset);
        }
        w.raw(",");
        w.key("xxh3");
        w.hex(piece.checksum);
        w.raw("}");
      }
      w.raw("],");
      w.key("rank");
      w.num(wb.rank);
      w.raw("}");
    }
    w.raw("],");
    if (!t.packed) {
      w.key("dataset");
      w.str(t.dataset);
      w.raw(",");
    }
    w.key("dtype");
    w.str(std::string(dtype_name(t.dtype)));
    w.raw(",");
    w.key("key");
    w.str(t.key);
    w.raw(",");
    w.key("layout");
    w.str(t.layout);
    w.raw(",");
    w.key("shape");
    w.ints(t.shape);
    w.raw(",");
    w.key("storage");
    w.raw(t.packed ? "\"packed\"}" : "\"dataset\"}");
  }
  w.raw("],");
  w.key("world_size");
  w.num(m.world_size);
  w.raw("}");
  return std::move(w.out);
}

Manifest decode_manifest(const std::string& text, const std::string& ckpt) {
  try {
    return decode_direct(text, ckpt);
  } catch (...) {
    // Anything unexpected, including a failed check: the reference decoder decides and explains.
  }
  return decode_manifest_reference(text, ckpt);
}

}  // namespace cairn
