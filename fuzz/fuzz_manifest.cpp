// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the 1.x manifest decoder (cairn still reads format 1.x files), the format 2.x
// header decoder and the commit-mark decoder of src/storage. Any input must either decode or
// throw cairn::Error; anything else (another exception type, a crash, a sanitizer report,
// unbounded memory or time) is a bug. Beyond "no crash", it checks the property the restore path
// relies on: what decodes re-encodes to text that decodes to the same value (encode is what the
// tests and the writer use to make files).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/core/error.hpp"
#include "storage/manifest.hpp"
#include "storage/table.hpp"

namespace {

[[noreturn]] void property_failed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_manifest: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string ckpt = "fuzz.h5";

  std::string encoded;
  bool decoded = false;
  try {
    encoded = cairn::encode_manifest(cairn::decode_manifest(text, ckpt));
    decoded = true;
  } catch (const cairn::Error&) {
  }
  if (decoded) {
    std::string again;
    try {
      again = cairn::encode_manifest(cairn::decode_manifest(encoded, ckpt));
    } catch (const cairn::Error& e) {
      property_failed("a re-encoded manifest no longer decodes", e.what());
    }
    if (again != encoded) property_failed("encode/decode is not stable", again);
  }

  try {
    const cairn::Header header = cairn::decode_header(text, ckpt);
    if (header.format_major != cairn::kLegacyMajor) {
      const std::string header_text = cairn::encode_header(header);
      if (cairn::encode_header(cairn::decode_header(header_text, ckpt)) != header_text)
        property_failed("header encode/decode is not stable", header_text);
    }
  } catch (const cairn::Error&) {
  }

  try {
    const cairn::CommitMark mark = cairn::decode_commit_mark(text, ckpt);
    const cairn::CommitMark back = cairn::decode_commit_mark(cairn::encode_commit_mark(mark), ckpt);
    if (back.manifest_checksum != mark.manifest_checksum ||
        back.manifest_bytes != mark.manifest_bytes || back.committed_unix != mark.committed_unix ||
        back.table_bytes != mark.table_bytes || back.table_checksum != mark.table_checksum)
      property_failed("commit mark does not round-trip", text);
  } catch (const cairn::Error&) {
  }
  return 0;
}
