// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the manifest and commit-mark decoders of src/storage. Any input must either
// decode or throw cairn::Error; anything else (another exception type, a crash, a sanitizer
// report, unbounded memory or time) is a bug. Beyond "no crash", it checks the properties the
// restore path relies on:
//   - the direct codec and the reference decoder give the same verdict (the direct one only ever
//     hands over to the reference, so a manifest one accepts and the other rejects would let two
//     builds of cairn disagree about a file);
//   - what decodes re-encodes to text that decodes to the same manifest (encode is the writer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/core/error.hpp"
#include "storage/manifest.hpp"

namespace {

[[noreturn]] void property_failed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_manifest: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string ckpt = "fuzz.h5";

  std::string direct_error, direct_encoded;
  try {
    direct_encoded = cairn::encode_manifest(cairn::decode_manifest(text, ckpt));
  } catch (const cairn::Error& e) {
    direct_error = e.what();
  }
  std::string reference_error, reference_encoded;
  try {
    reference_encoded =
        cairn::encode_manifest_reference(cairn::decode_manifest_reference(text, ckpt));
  } catch (const cairn::Error& e) {
    reference_error = e.what();
  }
  if (direct_error != reference_error)
    property_failed("decode_manifest and decode_manifest_reference disagree",
                    "direct: " + direct_error + "\nreference: " + reference_error);
  if (direct_error.empty()) {
    if (direct_encoded != reference_encoded)
      property_failed("the two encoders differ on a decoded manifest",
                      direct_encoded + "\n" + reference_encoded);
    std::string again;
    try {
      again = cairn::encode_manifest(cairn::decode_manifest(direct_encoded, ckpt));
    } catch (const cairn::Error& e) {
      property_failed("a re-encoded manifest no longer decodes", e.what());
    }
    if (again != direct_encoded) property_failed("encode/decode is not stable", again);
  }

  try {
    const cairn::CommitMark mark = cairn::decode_commit_mark(text, ckpt);
    const cairn::CommitMark back = cairn::decode_commit_mark(cairn::encode_commit_mark(mark), ckpt);
    if (back.manifest_checksum != mark.manifest_checksum ||
        back.manifest_bytes != mark.manifest_bytes || back.committed_unix != mark.committed_unix)
      property_failed("commit mark does not round-trip", text);
  } catch (const cairn::Error&) {
  }
  return 0;
}
