// SPDX-License-Identifier: Apache-2.0
#include "storage/manifest.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_set>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"
#include "storage/checksum.hpp"
#include "storage/json_integers.hpp"
#include "storage/manifest_checks.hpp"

namespace cairn {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxTensorRank = kMaxAxes;

json box_json(const Box& b) {
  return json{{"offset", b.offset}, {"count", b.count}};
}

[[noreturn]] void corrupt(const std::string& checkpoint, const std::string& key,
                          const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "manifest: " + what,
              {.checkpoint = checkpoint, .key = key, .operation = "decode manifest"});
}

// A value this reader does not know is damage in a file of a format it fully knows, but in a file
// of a newer minor format it is most likely something a newer cairn added: kVersion then, so that
// a manager reports it rather than skipping the checkpoint as damaged.
[[noreturn]] void unknown(const Manifest& m, const std::string& checkpoint, const std::string& key,
                          const std::string& what) {
  if (m.format_major == kLegacyMajor && m.format_minor > kLegacyMinor)
    throw Error(ErrorCode::kVersion,
                what + " is unknown to this reader (format " + std::to_string(kLegacyMajor) + "." +
                    std::to_string(kLegacyMinor) + "); the checkpoint is format " +
                    std::to_string(m.format_major) + "." + std::to_string(m.format_minor) +
                    ", written by a newer cairn: upgrade cairn to read it",
                {.checkpoint = checkpoint, .key = key, .operation = "decode manifest"});
  corrupt(checkpoint, key, "unknown " + what);
}

Box decode_box(const json& j) {
  return Box{detail::json_shape(j.at("offset")), detail::json_shape(j.at("count"))};
}

uint64_t decode_checksum(const json& j, const std::string& ckpt, const std::string& key) {
  uint64_t v = 0;
  if (!checksum_from_hex(j.at("xxh3").get<std::string>(), v))
    corrupt(ckpt, key, "bad checksum text");
  return v;
}

int decode_rank(const json& j, const Manifest& m, const std::string& ckpt, const std::string& key) {
  const auto rank = detail::json_int64(j.at("rank"));
  if (rank < 0 || rank >= m.world_size)
    corrupt(ckpt, key,
            "written by rank " + std::to_string(rank) + " of a " + std::to_string(m.world_size) +
                "-rank job");
  return static_cast<int>(rank);
}

}  // namespace

void check_packed_range(int64_t offset, int64_t bytes, int64_t packed_total,
                        const std::string& ckpt, const std::string& key) {
  if (offset < 0 || bytes < 0 || offset > packed_total || bytes > packed_total - offset)
    corrupt(ckpt, key,
            "packed range [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                ") lies outside the packed data (" + std::to_string(packed_total) + " bytes)");
}

namespace {

// Sweeps boxes sorted by their offset along axis 0: only boxes whose axis-0 ranges overlap are
// compared, so tiled layouts cost O(n log n) and only hostile input approaches O(n^2).
template <class BoxOf>
std::optional<std::pair<Box, Box>> find_overlap(std::vector<const void*> items, BoxOf box_of) {
  if (items.size() < 2) return std::nullopt;
  std::sort(items.begin(), items.end(),
            [&](const void* a, const void* b) { return box_of(a).offset < box_of(b).offset; });
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Box& a = box_of(items[i]);
    if (a.empty()) continue;
    const int64_t a_end = a.rank() ? a.offset[0] + a.count[0] : 1;
    for (std::size_t j = i + 1; j < items.size(); ++j) {
      const Box& b = box_of(items[j]);
      if (b.rank() && b.offset[0] >= a_end) break;
      if (!b.empty() && intersect(a, b)) return std::make_pair(a, b);
    }
  }
  return std::nullopt;
}

}  // namespace

void validate_tensor(const TensorRecord& t, const Manifest& m, const std::string& ckpt) {
  if (t.key.empty()) corrupt(ckpt, t.key, "empty tensor key");
  if (t.shape.size() > kMaxTensorRank) corrupt(ckpt, t.key, "tensor rank above 32");
  int64_t volume = 0;
  try {
    volume = shape_volume(t.shape);
  } catch (const Error& e) {
    corrupt(ckpt, t.key,
            std::string("invalid shape ") + shape_to_string(t.shape) + ": " + e.message());
  }
  int64_t total_bytes = 0;
  if (__builtin_mul_overflow(volume, static_cast<int64_t>(dtype_size(t.dtype)), &total_bytes) ||
      total_bytes > kMaxTensorBytes)
    corrupt(ckpt, t.key, "tensor of shape " + shape_to_string(t.shape) + " is absurdly large");
  if (!t.packed && t.dataset.empty()) corrupt(ckpt, t.key, "tensor has no dataset");
  int64_t written = 0;
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  // A box whose offset and count differ in length cannot even be printed: say so first.
  auto check_axes = [&](const Box& b, const char* what) {
    if (b.offset.size() != t.shape.size() || b.count.size() != t.shape.size())
      corrupt(ckpt, t.key,
              std::string(what) + " has " + std::to_string(b.offset.size()) + " offsets and " +
                  std::to_string(b.count.size()) + " counts for a tensor of " +
                  std::to_string(t.shape.size()) + " axes");
  };
  for (const WrittenBox& wb : t.boxes) {
    check_axes(wb.box, "a box");
    if (wb.rank < 0 || wb.rank >= m.world_size)
      corrupt(ckpt, t.key,
              "box written by rank " + std::to_string(wb.rank) + " of a " +
                  std::to_string(m.world_size) + "-rank job");
    if (wb.box.rank() != t.shape.size() || wb.box.offset.size() != t.shape.size() ||
        !inside_shape(wb.box, t.shape))
      corrupt(ckpt, t.key,
              "box " + wb.box.to_string() + " lies outside shape " + shape_to_string(t.shape));
    int64_t in_pieces = 0;
    for (const PieceRecord& p : wb.pieces) {
      check_axes(p.box, "a piece");
      if (p.box.rank() != t.shape.size() || p.box.offset.size() != t.shape.size() ||
          !contains(wb.box, p.box))
        corrupt(ckpt, t.key,
                "piece " + p.box.to_string() + " lies outside its box " + wb.box.to_string());
      // Each piece lies inside the box, but a hostile list may repeat it until the sum overflows.
      if (__builtin_add_overflow(in_pieces, p.box.volume(), &in_pieces))
        corrupt(ckpt, t.key,
                "pieces of box " + wb.box.to_string() + " hold more elements than fit in int64");
      if (t.packed)
        check_packed_range(p.packed_offset, p.box.volume() * esize, m.packed_bytes, ckpt, t.key);
    }
    if (in_pieces != wb.box.volume())
      corrupt(ckpt, t.key, "pieces of box " + wb.box.to_string() + " do not add up to it");
    std::vector<const void*> pieces;
    if (wb.pieces.size() > 1)
      for (const PieceRecord& p : wb.pieces) pieces.push_back(&p);
    if (auto o = find_overlap(pieces, [](const void* p) -> const Box& {
          return static_cast<const PieceRecord*>(p)->box;
        }))
      corrupt(ckpt, t.key,
              "pieces " + o->first.to_string() + " and " + o->second.to_string() + " overlap");
    if (__builtin_add_overflow(written, wb.box.volume(), &written))
      corrupt(ckpt, t.key, "written boxes hold more elements than fit in int64");
  }
  std::vector<const void*> boxes;
  for (const WrittenBox& wb : t.boxes) boxes.push_back(&wb);
  if (auto o = find_overlap(boxes, [](const void* b) -> const Box& {
        return static_cast<const WrittenBox*>(b)->box;
      }))
    corrupt(ckpt, t.key,
            "written boxes " + o->first.to_string() + " and " + o->second.to_string() + " overlap");
  if (written != volume)
    corrupt(ckpt, t.key,
            "written boxes hold " + std::to_string(written) + " elements, shape " +
                shape_to_string(t.shape) + " has " + std::to_string(volume));
}

std::string escape_name(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '.')
      out += "..";
    else if (c == '/')
      out += ".S";
    else
      out += c;
  }
  return out;
}

std::string encode_manifest(const Manifest& m) {
  json nodes = json::array();
  for (const NodeRecord& n : m.nodes) {
    json children = json::array();
    for (const auto& [name, id] : n.children) children.push_back(json::array({name, id}));
    json slots = json::array();
    for (const SlotRecord& s : n.slots)
      slots.push_back({{"variable", s.variable}, {"name", s.name}, {"slot", s.slot}});
    json node{{"kind", n.kind}, {"path", n.path}, {"children", std::move(children)}};
    if (!slots.empty()) node["slots"] = std::move(slots);
    if (!n.value_key.empty()) node["value"] = n.value_key;
    nodes.push_back(std::move(node));
  }
  json tensors = json::array();
  for (const TensorRecord& t : m.tensors) {
    json boxes = json::array();
    for (const WrittenBox& wb : t.boxes) {
      json pieces = json::array();
      for (const PieceRecord& p : wb.pieces) {
        json pj = box_json(p.box);
        pj["xxh3"] = checksum_to_hex(p.checksum);
        if (t.packed) pj["packed_offset"] = p.packed_offset;
        pieces.push_back(std::move(pj));
      }
      json bj = box_json(wb.box);
      bj["rank"] = wb.rank;
      bj["pieces"] = std::move(pieces);
      boxes.push_back(std::move(bj));
    }
    json tj{{"key", t.key},
            {"dtype", dtype_name(t.dtype)},
            {"shape", t.shape},
            {"layout", t.layout},
            {"storage", t.packed ? "packed" : "dataset"},
            {"boxes", std::move(boxes)}};
    if (!t.packed) tj["dataset"] = t.dataset;
    tensors.push_back(std::move(tj));
  }
  json states = json::array();
  for (const StateRecord& s : m.states) {
    json blobs = json::array();
    for (const StateBlob& b : s.blobs)
      blobs.push_back({{"rank", b.rank},
                       {"packed_offset", b.packed_offset},
                       {"bytes", b.bytes},
                       {"xxh3", checksum_to_hex(b.checksum)}});
    states.push_back({{"key", s.key},
                      {"scope", s.scope == SavedScope::kPerRank ? "per_rank" : "global"},
                      {"blobs", std::move(blobs)}});
  }
  json root{
      {"format", "cairn-checkpoint"},
      {"format_version", std::to_string(m.format_major) + "." + std::to_string(m.format_minor)},
      {"library_version", m.library_version},
      {"world_size", m.world_size},
      {"save_counter", m.save_counter},
      {"created_unix", m.created_unix},
      {"packed_bytes", m.packed_bytes},
      {"nodes", std::move(nodes)},
      {"tensors", std::move(tensors)},
      {"states", std::move(states)}};
  return root.dump();
}

Manifest decode_manifest(const std::string& text, const std::string& ckpt) {
  Manifest m;
  std::string current_key;
  try {
    const json root = json::parse(text);
    if (root.at("format").get<std::string>() != "cairn-checkpoint")
      corrupt(ckpt, "", "not a cairn checkpoint manifest");
    const std::string version = root.at("format_version").get<std::string>();
    const auto dot = version.find('.');
    if (dot == std::string::npos) corrupt(ckpt, "", "bad format_version '" + version + "'");
    m.format_major = std::stoi(version.substr(0, dot));
    m.format_minor = std::stoi(version.substr(dot + 1));
    if (m.format_major > kLegacyMajor)
      throw Error(ErrorCode::kVersion,
                  "checkpoint format " + version + " is not a 1.x manifest (this decoder reads " +
                      std::to_string(kLegacyMajor) + ".x)",
                  {.checkpoint = ckpt, .operation = "decode manifest"});
    if (m.format_major < 1) corrupt(ckpt, "", "bad format_version '" + version + "'");
    m.library_version = root.at("library_version").get<std::string>();
    const auto world_size = detail::json_int64(root.at("world_size"));
    if (world_size < 1 || world_size > kMaxWorldSize)
      corrupt(ckpt, "", "world_size " + std::to_string(world_size) + " out of range");
    m.world_size = static_cast<int>(world_size);
    m.save_counter = detail::json_int64(root.at("save_counter"));
    m.created_unix = detail::json_int64(root.at("created_unix"));
    m.packed_bytes = detail::json_int64(root.at("packed_bytes"));
    if (m.packed_bytes < 0) corrupt(ckpt, "", "negative packed_bytes");

    for (const json& nj : root.at("nodes")) {
      NodeRecord n;
      n.kind = nj.at("kind").get<std::string>();
      n.path = nj.at("path").get<std::string>();
      for (const json& c : nj.at("children"))
        n.children.emplace_back(c.at(0).get<std::string>(), detail::json_int64(c.at(1)));
      if (nj.contains("slots"))
        for (const json& s : nj.at("slots"))
          n.slots.push_back({detail::json_int64(s.at("variable")), s.at("name").get<std::string>(),
                             detail::json_int64(s.at("slot"))});
      if (nj.contains("value")) n.value_key = nj.at("value").get<std::string>();
      m.nodes.push_back(std::move(n));
    }
    std::unordered_set<std::string> keys;
    for (const json& tj : root.at("tensors")) {
      TensorRecord t;
      t.key = current_key = tj.at("key").get<std::string>();
      auto dtype = dtype_from_name(tj.at("dtype").get<std::string>());
      if (!dtype) unknown(m, ckpt, t.key, "dtype '" + tj.at("dtype").get<std::string>() + "'");
      t.dtype = *dtype;
      t.shape = detail::json_shape(tj.at("shape"));
      t.layout = tj.at("layout").get<std::string>();
      const std::string storage = tj.at("storage").get<std::string>();
      if (storage != "packed" && storage != "dataset")
        unknown(m, ckpt, t.key, "storage '" + storage + "'");
      t.packed = storage == "packed";
      if (!t.packed) t.dataset = tj.at("dataset").get<std::string>();
      for (const json& bj : tj.at("boxes")) {
        WrittenBox wb{decode_rank(bj, m, ckpt, t.key), decode_box(bj), {}};
        for (const json& pj : bj.at("pieces"))
          wb.pieces.push_back({decode_box(pj), decode_checksum(pj, ckpt, t.key),
                               t.packed ? detail::json_int64(pj.at("packed_offset")) : -1});
        t.boxes.push_back(std::move(wb));
      }
      validate_tensor(t, m, ckpt);
      if (!keys.insert(t.key).second) corrupt(ckpt, t.key, "duplicate key");
      m.tensors.push_back(std::move(t));
    }
    for (const json& sj : root.at("states")) {
      StateRecord s;
      s.key = current_key = sj.at("key").get<std::string>();
      const std::string scope = sj.at("scope").get<std::string>();
      if (scope != "per_rank" && scope != "global")
        unknown(m, ckpt, s.key, "scope '" + scope + "'");
      s.scope = scope == "per_rank" ? SavedScope::kPerRank : SavedScope::kGlobal;
      for (const json& bj : sj.at("blobs")) {
        StateBlob b{decode_rank(bj, m, ckpt, s.key), detail::json_int64(bj.at("packed_offset")),
                    detail::json_int64(bj.at("bytes")), decode_checksum(bj, ckpt, s.key)};
        if (b.rank < 0 || b.rank >= m.world_size) corrupt(ckpt, s.key, "blob of rank out of range");
        check_packed_range(b.packed_offset, b.bytes, m.packed_bytes, ckpt, s.key);
        s.blobs.push_back(b);
      }
      if (!keys.insert(s.key).second) corrupt(ckpt, s.key, "duplicate key");
      m.states.push_back(std::move(s));
    }
    current_key.clear();
    if (m.nodes.empty() || m.nodes[0].kind != "root") corrupt(ckpt, "", "object graph has no root");
    const auto n_nodes = static_cast<int64_t>(m.nodes.size());
    for (const NodeRecord& n : m.nodes) {
      for (const auto& [name, id] : n.children)
        if (name.empty() || id < 0 || id >= n_nodes)
          corrupt(ckpt, n.path,
                  "edge '" + name + "' points to node " + std::to_string(id) + " of " +
                      std::to_string(n_nodes));
      for (const SlotRecord& s : n.slots)
        if (s.variable < 0 || s.variable >= n_nodes || s.slot < 0 || s.slot >= n_nodes)
          corrupt(ckpt, n.path, "slot '" + s.name + "' points outside the object graph");
      if (!n.value_key.empty() && !keys.count(n.value_key))
        corrupt(ckpt, n.path, "object's value '" + n.value_key + "' is not in the checkpoint");
    }
  } catch (const json::exception& e) {
    corrupt(ckpt, current_key, std::string("malformed JSON: ") + e.what());
  } catch (const detail::NotAnInteger&) {
    corrupt(ckpt, current_key,
            "malformed JSON: a number that must be an integer is not one, or is out of range");
  } catch (const std::invalid_argument&) {
    corrupt(ckpt, current_key, "malformed format_version");
  } catch (const std::out_of_range&) {
    corrupt(ckpt, current_key, "malformed format_version");
  }
  return m;
}

std::string encode_commit_mark(const CommitMark& mark) {
  json j{{"manifest_xxh3", checksum_to_hex(mark.manifest_checksum)},
         {"manifest_bytes", mark.manifest_bytes},
         {"committed_unix", mark.committed_unix}};
  if (mark.table_bytes >= 0) {
    j["table_xxh3"] = checksum_to_hex(mark.table_checksum);
    j["table_bytes"] = mark.table_bytes;
  }
  return j.dump();
}

CommitMark decode_commit_mark(const std::string& text, const std::string& ckpt) {
  try {
    const json j = json::parse(text);
    CommitMark mark;
    if (!checksum_from_hex(j.at("manifest_xxh3").get<std::string>(), mark.manifest_checksum))
      corrupt(ckpt, "", "commit mark has a bad checksum");
    mark.manifest_bytes = detail::json_int64(j.at("manifest_bytes"));
    mark.committed_unix = detail::json_int64(j.at("committed_unix"));
    // Present in 2.x marks; whether they must be is for the header's version to say.
    if (j.contains("table_bytes") || j.contains("table_xxh3")) {
      if (!checksum_from_hex(j.at("table_xxh3").get<std::string>(), mark.table_checksum))
        corrupt(ckpt, "", "commit mark has a bad table checksum");
      mark.table_bytes = detail::json_int64(j.at("table_bytes"));
      if (mark.table_bytes < 0) corrupt(ckpt, "", "commit mark gives a negative table size");
    }
    return mark;
  } catch (const json::exception& e) {
    corrupt(ckpt, "", std::string("malformed commit mark: ") + e.what());
  } catch (const detail::NotAnInteger&) {
    corrupt(ckpt, "",
            "malformed commit mark: a size or time is not an integer, or is out of range");
  }
}

}  // namespace cairn
