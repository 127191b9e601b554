// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: format 2.0's header, table and record decoders (src/storage/table.hpp). The
// input is framed as one rank byte, the header's and the table's lengths (u32, little-endian),
// then the header JSON, the table and one record (the rest); see table_seeds.hpp. Any input must
// either decode or throw cairn::Error; anything else (another exception, a crash, a sanitizer
// report, unbounded memory or time) is a bug. Beyond "no crash", it checks what readers rely on:
//   - what decodes re-encodes to bytes that decode to the same thing (encode is the writer);
//   - a table that decodes builds its manifest, and a record that decodes is added to it, without
//     an error (decoding checked everything they rely on);
//   - writers_intersecting agrees with writer_boxes on the whole tensor.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/core/error.hpp"
#include "storage/table.hpp"

namespace {

[[noreturn]] void property_failed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_table: %s\n%s\n", what, detail.c_str());
  std::abort();
}

uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void check_layouts(const cairn::GlobalTable& table, int world) {
  if (world > 64) return;  // brute force over every writer
  for (const cairn::TableTensor& t : table.tensors) {
    if (t.layout == cairn::LayoutRule::kReplicated) continue;
    std::vector<int> writers;
    for (int w = 0; w < world; ++w)
      if (!cairn::writer_boxes(t, w, world).empty()) writers.push_back(w);
    const cairn::Box whole = cairn::Box::whole(t.shape);
    if (cairn::writers_intersecting(t, whole, world) !=
        (whole.empty() ? std::vector<int>{} : writers))
      property_failed("writers_intersecting disagrees with writer_boxes", whole.to_string());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  const std::string ckpt = "fuzz.h5";
  std::string_view rest(reinterpret_cast<const char*>(data) + 9, size - 9);
  const std::string header_text(rest.substr(0, std::min<std::size_t>(le32(data + 1), rest.size())));
  rest.remove_prefix(header_text.size());
  const std::string_view table_bytes =
      rest.substr(0, std::min<std::size_t>(le32(data + 5), rest.size()));
  rest.remove_prefix(table_bytes.size());
  const std::string_view record_bytes = rest;

  cairn::Header header;
  try {
    header = cairn::decode_header(header_text, ckpt);
  } catch (const cairn::Error&) {
    return 0;
  }
  if (header.format_major != cairn::kFormatMajor) return 0;  // 1.x: a whole manifest
  const std::string header_again = cairn::encode_header(header);
  try {
    if (cairn::encode_header(cairn::decode_header(header_again, ckpt)) != header_again)
      property_failed("header encode/decode is not stable", header_again);
  } catch (const cairn::Error& e) {
    property_failed("a re-encoded header no longer decodes", e.what());
  }

  cairn::GlobalTable table;
  try {
    table = cairn::decode_table(table_bytes, header, ckpt);
  } catch (const cairn::Error&) {
    return 0;
  }
  const std::string encoded = cairn::encode_table(table);
  cairn::Manifest manifest;
  try {
    if (cairn::encode_table(cairn::decode_table(encoded, header, ckpt)) != encoded)
      property_failed("table encode/decode is not stable", "");
    manifest = cairn::manifest_from_table(header, table);
  } catch (const cairn::Error& e) {
    property_failed("a decoded table no longer decodes, or builds no manifest", e.what());
  }
  check_layouts(table, header.world_size);

  const int rank = data[0] % header.world_size;
  cairn::RankRecord record;
  try {
    record = cairn::decode_record(record_bytes, rank, table, header, ckpt);
  } catch (const cairn::Error&) {
    return 0;
  }
  const std::string record_encoded = cairn::encode_record(record);
  try {
    if (cairn::encode_record(cairn::decode_record(record_encoded, rank, table, header, ckpt)) !=
        record_encoded)
      property_failed("record encode/decode is not stable", "");
    cairn::add_record(manifest, table, header, record);
  } catch (const cairn::Error& e) {
    property_failed("a decoded record no longer decodes, or cannot be added", e.what());
  }
  return 0;
}
