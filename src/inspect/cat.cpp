// SPDX-License-Identifier: Apache-2.0
// cairn cat: the values of a tensor or a slice of it, or the bytes of opaque state.
#include "cairn/inspect/cat.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "inspect/probe.hpp"
#include "inspect/summary.hpp"
#include "inspect/values.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/tensor_read.hpp"

namespace cairn::inspect {
namespace {

using nlohmann::ordered_json;

constexpr int64_t kPerLine = 8;
constexpr std::size_t kFlushValues = 4096;  // values aligned together

[[noreturn]] void bad_slice(const std::string& text, const Shape& shape, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument,
              "bad slice '" + text + "' for shape " + shape_to_string(shape) + ": " + why);
}

int64_t parse_index(const std::string& item, const std::string& text, const Shape& shape) {
  int64_t v = 0;
  const char* begin = item.data();
  const char* end = item.data() + item.size();
  auto [p, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || p != end) bad_slice(text, shape, "'" + item + "' is not an integer");
  return v;
}

// Lines of values, right-aligned together in batches.
class ValuePrinter {
 public:
  ValuePrinter(std::ostream& out, const Box& region) : out_(out), region_(region) {}
  void add(const Shape& index, std::string value) {
    const bool scalar = region_.rank() == 0;
    const std::size_t last = scalar ? 0 : region_.rank() - 1;
    if (lines_.empty() || (!scalar && (index[last] - region_.offset[last]) % kPerLine == 0)) {
      if (count_ >= kFlushValues) flush();
      std::string label;
      if (!scalar) {
        label = "[";
        for (std::size_t d = 0; d < last; ++d) label += std::to_string(index[d]) + ", ";
        const int64_t end =
            std::min(index[last] + kPerLine, region_.offset[last] + region_.count[last]);
        label += std::to_string(index[last]) + ":" + std::to_string(end) + "]";
      }
      lines_.push_back({std::move(label), {}});
    }
    lines_.back().second.push_back(std::move(value));
    ++count_;
  }
  void flush() {
    std::size_t label_width = 0, value_width = 0;
    for (const auto& [label, values] : lines_) {
      label_width = std::max(label_width, label.size());
      for (const auto& v : values) value_width = std::max(value_width, v.size());
    }
    for (const auto& [label, values] : lines_) {
      std::string line = label + std::string(label_width - label.size(), ' ');
      for (const auto& v : values)
        line += (line.empty() ? "" : "  ") + std::string(value_width - v.size(), ' ') + v;
      out_ << line << '\n';
    }
    lines_.clear();
    count_ = 0;
  }

 private:
  std::ostream& out_;
  Box region_;
  std::vector<std::pair<std::string, std::vector<std::string>>> lines_;
  std::size_t count_ = 0;
};

void hex_dump(std::ostream& out, const std::string& bytes, int64_t limit) {
  const auto n = limit > 0 ? std::min<int64_t>(limit, static_cast<int64_t>(bytes.size()))
                           : static_cast<int64_t>(bytes.size());
  for (int64_t row = 0; row < n; row += 16) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(row));
    std::string line = buf;
    std::string ascii;
    for (int64_t i = row; i < row + 16; ++i) {
      if (i < n) {
        const auto c = static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
        std::snprintf(buf, sizeof buf, " %02x", c);
        line += buf;
        ascii += c >= 32 && c < 127 ? static_cast<char>(c) : '.';
      } else {
        line += "   ";
      }
    }
    out << line << "  |" << ascii << "|\n";
  }
  if (n < static_cast<int64_t>(bytes.size()))
    out << "... " << static_cast<int64_t>(bytes.size()) - n
        << " more bytes (--limit 0 prints all)\n";
}

int cat_state(const detail::Probe& p, const StateRecord& s, const CatOptions& options,
              std::ostream& out) {
  const StateBlob* blob = nullptr;
  for (const StateBlob& b : s.blobs)
    if (s.scope == SavedScope::kGlobal || b.rank == options.rank) blob = &b;
  if (!blob)
    throw Error(ErrorCode::kInvalidArgument,
                "no value saved by rank " + std::to_string(options.rank) + " (the saving job had " +
                    std::to_string(p.manifest->world_size) + " ranks)",
                {.checkpoint = p.path, .key = s.key});
  std::string bytes;
  cairn::detail::PackedReadBatch batch;
  cairn::detail::read_state_blob(s, *blob, bytes, batch);
  batch.run(*p.reader, std::max<int64_t>(options.chunk_bytes, blob->bytes));
  if (options.json) {
    const auto n = options.limit > 0 ? std::min<int64_t>(options.limit, blob->bytes) : blob->bytes;
    std::string hex;
    char buf[4];
    for (int64_t i = 0; i < n; ++i) {
      std::snprintf(buf, sizeof buf, "%02x",
                    static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]));
      hex += buf;
    }
    ordered_json j{{"key", s.key},       {"scope", detail::scope_name(s.scope)},
                   {"rank", blob->rank}, {"bytes", blob->bytes},
                   {"shown_bytes", n},   {"hex", hex}};
    out << j.dump(2) << '\n';
    return kExitOk;
  }
  out << s.key << ": " << detail::scope_name(s.scope) << " state";
  if (s.scope == SavedScope::kPerRank)
    out << ", value of rank " << blob->rank;
  else
    out << ", written by rank " << blob->rank;
  out << ", " << blob->bytes << " bytes\n";
  hex_dump(out, bytes, options.limit);
  return kExitOk;
}

// An element as a JSON value: integers exactly, floats as the number their shortest text reads
// as (NaN and infinities, which JSON lacks, as the strings "nan", "inf", "-inf"), bools as bools.
ordered_json element_json(DType dtype, const std::byte* p) {
  if (dtype == DType::kBool) return std::to_integer<uint8_t>(*p) != 0;
  const std::string text = detail::format_element(dtype, p);
  if (detail::is_floating(dtype)) {
    const double v = detail::to_double(dtype, p);
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  }
  return ordered_json::parse(text);
}

int cat_json(detail::Probe& p, const TensorRecord& t, const Box& region, int64_t shown,
             const CatOptions& options, std::ostream& out) {
  const auto esize = static_cast<int64_t>(dtype_size(t.dtype));
  ordered_json values = ordered_json::array();
  if (shown > 0)
    detail::for_each_chunk(
        *p.reader, t, region, std::min(options.chunk_bytes, std::max(shown * esize, esize)),
        [&](const Box& chunk, const std::byte* data) {
          const int64_t n = chunk.volume();
          for (int64_t i = 0; i < n && static_cast<int64_t>(values.size()) < shown; ++i)
            values.push_back(element_json(t.dtype, data + i * esize));
          return static_cast<int64_t>(values.size()) < shown;
        });
  ordered_json j;
  j["key"] = t.key;
  j["dtype"] = dtype_name(t.dtype);
  j["shape"] = t.shape;
  j["region"] = {{"offset", region.offset}, {"count", region.count}};
  j["elements"] = region.volume();
  j["shown"] = shown;
  j["values"] = std::move(values);
  out << j.dump(2) << '\n';
  return kExitOk;
}

}  // namespace

Box parse_slice(const std::string& text, const Shape& shape) {
  Box box = Box::whole(shape);
  if (text.empty()) return box;
  std::vector<std::string> items;
  for (std::size_t start = 0;;) {
    const std::size_t comma = text.find(',', start);
    items.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (items.size() > shape.size())
    bad_slice(
        text, shape,
        std::to_string(items.size()) + " items for " + std::to_string(shape.size()) + " axes");
  for (std::size_t d = 0; d < items.size(); ++d) {
    std::string item = items[d];
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    const int64_t extent = shape[d];
    auto resolve = [&](int64_t v) { return v < 0 ? v + extent : v; };
    int64_t begin = 0, end = extent;
    const std::size_t colon = item.find(':');
    if (colon == std::string::npos) {
      if (item.empty()) bad_slice(text, shape, "empty item for axis " + std::to_string(d));
      begin = resolve(parse_index(item, text, shape));
      end = begin + 1;
      if (begin < 0 || begin >= extent)
        bad_slice(text, shape,
                  "index " + item + " is outside axis " + std::to_string(d) + " of extent " +
                      std::to_string(extent));
    } else {
      const std::string a = item.substr(0, colon), b = item.substr(colon + 1);
      if (b.find(':') != std::string::npos) bad_slice(text, shape, "steps are not supported");
      if (!a.empty()) begin = resolve(parse_index(a, text, shape));
      if (!b.empty()) end = resolve(parse_index(b, text, shape));
      if (begin < 0 || end > extent || begin > end)
        bad_slice(text, shape,
                  "'" + item + "' is not a range inside axis " + std::to_string(d) + " of extent " +
                      std::to_string(extent));
    }
    box.offset[d] = begin;
    box.count[d] = end - begin;
  }
  return box;
}

int cat(const CatOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  detail::Probe p = detail::open_committed(options.path);
  const Manifest& m = *p.manifest;
  const TensorRecord* t = nullptr;
  for (const std::string& key : {options.key, options.key + "/.ATTRIBUTES/VARIABLE_VALUE"})
    for (const TensorRecord& r : m.tensors)
      if (!t && r.key == key) t = &r;
  if (!t) {
    for (const std::string& key : {options.key, options.key + "/.ATTRIBUTES/STATE"})
      for (const StateRecord& s : m.states)
        if (s.key == key) {
          if (!options.slice.empty())
            throw Error(ErrorCode::kInvalidArgument,
                        "--slice applies to tensors, not to opaque state",
                        {.checkpoint = p.path, .key = s.key});
          return cat_state(p, s, options, out);
        }
    throw Error(ErrorCode::kInvalidArgument,
                "no tensor or state with this key (cairn ls lists the keys)",
                {.checkpoint = p.path, .key = options.key});
  }
  const Box region = parse_slice(options.slice, t->shape);
  const int64_t total = region.volume();
  const int64_t shown = options.limit > 0 ? std::min(options.limit, total) : total;
  const auto esize = static_cast<int64_t>(dtype_size(t->dtype));
  if (options.json) return cat_json(p, *t, region, shown, options, out);
  out << t->key << ": " << dtype_name(t->dtype) << " " << shape_to_string(t->shape);
  if (!options.slice.empty()) out << ", slice " << region.to_string();
  out << " (" << total << (total == 1 ? " element" : " elements") << ")\n";
  if (shown == 0) return kExitOk;
  // Read only what is printed: the first `shown` elements in row-major order of the region.
  ValuePrinter printer(out, region);
  int64_t printed = 0;
  Shape index = region.offset;
  detail::for_each_chunk(*p.reader, *t, region,
                         std::min(options.chunk_bytes, std::max(shown * esize, esize)),
                         [&](const Box& chunk, const std::byte* data) {
                           const int64_t n = chunk.volume();
                           for (int64_t i = 0; i < n && printed < shown; ++i, ++printed) {
                             printer.add(index, detail::format_element(t->dtype, data + i * esize));
                             for (std::size_t d = region.rank(); d-- > 0;) {
                               if (++index[d] < region.offset[d] + region.count[d]) break;
                               index[d] = region.offset[d];
                             }
                           }
                           return printed < shown;
                         });
  printer.flush();
  if (shown < total) out << "... " << total - shown << " more elements (--limit 0 prints all)\n";
  return kExitOk;
}

}  // namespace cairn::inspect
