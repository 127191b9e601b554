// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn cat CKPT KEY`: the values of a tensor, or of a slice of it; the bytes of opaque state.
#include <cstdint>
#include <iosfwd>
#include <string>

#include "cairn/tensor/box.hpp"

namespace cairn::inspect {

struct CatOptions {
  std::string path;
  std::string key;
  std::string slice;    // "a:b,c:d" (see parse_slice); empty for the whole tensor
  int64_t limit = 256;  // elements (tensors) or bytes (state) printed at most; 0 = no limit
  int rank = 0;         // for per-rank opaque state: the saving rank whose value to print
  int64_t chunk_bytes = int64_t{8} << 20;
  bool json = false;  // one JSON object: the shown values as a flat row-major array
};

/// Local. Prints a header (key, dtype, shape, slice) and the values in row-major order, one line
/// per run of at most 8 elements along the last axis, labelled with its index range. Floats are
/// printed in the shortest form that reads back exactly; f16 and bf16 as their float value. For an
/// opaque-state key, prints a hex dump of the value saved by `rank`. Reads only the checksummed
/// pieces that hold what it prints (each whole, to check its checksum), in bounded chunks. Throws
/// cairn::Error: kInvalidArgument for an unknown key or a bad slice, others when the checkpoint
/// cannot be read.
int cat(const CatOptions& options, std::ostream& out);

/// Local. Parses a slice of a tensor of `shape`: one comma-separated item per axis, each "i" (one
/// index), "a:b", "a:", ":b" or ":" (half-open, like Python; negative numbers count from the end).
/// Missing trailing axes are whole. Throws kInvalidArgument if the text does not fit `shape`.
Box parse_slice(const std::string& text, const Shape& shape);

}  // namespace cairn::inspect
