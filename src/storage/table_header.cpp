// SPDX-License-Identifier: Apache-2.0
// The header of format 2.x (`/cairn/manifest`): small JSON with the global scalars. Its
// format_version decides how the rest of the file is read.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "cairn/core/error.hpp"
#include "storage/json_integers.hpp"
#include "storage/manifest_checks.hpp"
#include "storage/table.hpp"

namespace cairn {
namespace {

using nlohmann::json;

[[noreturn]] void header_corrupt(const std::string& ckpt, const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "header: " + what,
              {.checkpoint = ckpt, .operation = "decode header"});
}

// "<major>.<minor>", both plain decimal numbers; false for anything else.
bool parse_version(const std::string& text, int& major, int& minor) {
  const auto dot = text.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == text.size() || dot > 9 ||
      text.size() - dot - 1 > 9)
    return false;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (i != dot && (text[i] < '0' || text[i] > '9')) return false;
  major = std::stoi(text.substr(0, dot));
  minor = std::stoi(text.substr(dot + 1));
  return true;
}

}  // namespace

std::string format_version_text(int major, int minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

bool Header::holds_writer(int rank) const {
  return part_writers.empty() ? rank >= 0 && rank < world_size
                              : std::binary_search(part_writers.begin(), part_writers.end(), rank);
}

std::string encode_header(const Header& h) {
  json out{{"format", "cairn-checkpoint"},
           {"format_version", format_version_text(h.format_major, h.format_minor)},
           {"library_version", h.library_version},
           {"world_size", h.world_size},
           {"save_counter", h.save_counter},
           {"created_unix", h.created_unix},
           {"packed_bytes", h.packed_bytes},
           {"piece_bytes", h.piece_bytes},
           {"pack_threshold_bytes", h.pack_threshold_bytes}};
  if (!h.part_writers.empty())
    out["part"] = {{"index", h.part_index}, {"count", h.part_count}, {"writers", h.part_writers}};
  return out.dump();
}

Header decode_header(const std::string& text, const std::string& ckpt) {
  Header h;
  try {
    const json root = json::parse(text);
    if (!root.is_object()) header_corrupt(ckpt, "not a JSON object");
    if (root.at("format").get<std::string>() != "cairn-checkpoint")
      header_corrupt(ckpt, "not a cairn checkpoint header");
    const std::string version = root.at("format_version").get<std::string>();
    if (!parse_version(version, h.format_major, h.format_minor))
      header_corrupt(ckpt, "bad format_version '" + version + "'");
    if (h.format_major > kFormatMajor)
      throw Error(ErrorCode::kVersion,
                  "checkpoint format " + version + " is newer than this cairn reads (format " +
                      std::to_string(kFormatMajor) + ".x); upgrade cairn to read it",
                  {.checkpoint = ckpt, .operation = "decode header"});
    if (h.format_major < 1) header_corrupt(ckpt, "bad format_version '" + version + "'");
    if (h.format_major == 1) return h;  // a whole 1.x manifest: the caller decodes it as one
    h.library_version = root.at("library_version").get<std::string>();
    auto integer = [&](const char* name, int64_t low, int64_t high) {
      const int64_t v = detail::json_int64(root.at(name));
      if (v < low || v > high)
        header_corrupt(ckpt, std::string(name) + " " + std::to_string(v) + " is out of range [" +
                                 std::to_string(low) + ", " + std::to_string(high) + "]");
      return v;
    };
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    h.world_size = static_cast<int>(integer("world_size", 1, kMaxWorldSize));
    h.save_counter = integer("save_counter", kMin, kMax);
    h.created_unix = integer("created_unix", kMin, kMax);
    h.packed_bytes = integer("packed_bytes", 0, kMax);
    h.piece_bytes = integer("piece_bytes", 1, kMax);
    h.pack_threshold_bytes = integer("pack_threshold_bytes", 0, kMax);
    if (const auto part = root.find("part"); part != root.end()) {
      // Parts are 2.1: a 2.0 header with a `part` member is damage. (A 2.0 reader given a part
      // ignores the member and reports the absent writers' empty records as damage: kCorrupt,
      // not kVersion; see docs/format.md.)
      if (h.format_minor < kPartFormatMinor)
        header_corrupt(ckpt, "a part of a checkpoint must be format 2." +
                                 std::to_string(kPartFormatMinor) + " or newer");
      auto member = [&](const char* name, int64_t low, int64_t high) {
        const int64_t v = detail::json_int64(part->at(name));
        if (v < low || v > high)
          header_corrupt(ckpt, std::string("part.") + name + " " + std::to_string(v) +
                                   " is out of range [" + std::to_string(low) + ", " +
                                   std::to_string(high) + "]");
        return static_cast<int>(v);
      };
      h.part_count = member("count", 1, h.world_size);
      h.part_index = member("index", 0, h.part_count - 1);
      const json& writers = part->at("writers");
      if (!writers.is_array() || writers.empty() ||
          writers.size() > static_cast<std::size_t>(h.world_size))
        header_corrupt(ckpt, "part.writers must list 1 to world_size ranks");
      for (const json& w : writers) {
        const int64_t r = detail::json_int64(w);
        if (r < 0 || r >= h.world_size || (!h.part_writers.empty() && r <= h.part_writers.back()))
          header_corrupt(ckpt, "part.writers must be ascending ranks below world_size, found " +
                                   std::to_string(r));
        h.part_writers.push_back(static_cast<int>(r));
      }
    }
  } catch (const json::exception& e) {
    header_corrupt(ckpt, std::string("malformed JSON: ") + e.what());
  } catch (const detail::NotAnInteger&) {
    header_corrupt(ckpt, "a number that must be an integer is not one, or is out of range");
  }
  return h;
}

}  // namespace cairn
