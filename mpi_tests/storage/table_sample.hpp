// SPDX-License-Identifier: Apache-2.0
#pragma once
// The format 2.0 codec tests' sample: a table of 3 ranks with every dtype, layout and graph shape,
// its records and the manifest they must give, built by hand; and helpers to damage bytes.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "storage/table.hpp"

namespace cairn::table_testing {

inline constexpr int kWorld = 3;
inline constexpr int64_t kPieceBytes = 8;
inline constexpr int64_t kPackedBytes = 1000;

struct Sample {
  Header header;
  GlobalTable table;
  std::vector<RankRecord> records;
  Manifest expected;  // built by hand
};

Box B(Shape offset, Shape count);
TableTensor tensor(uint32_t node, DType dtype, bool packed, LayoutRule layout, Shape shape,
                   std::vector<int64_t> params = {}, std::vector<TableBox> boxes = {});

/// World size 3, piece_bytes 8: all 13 dtypes, packed and dataset, the four layouts, scalars,
/// empty tensors, a shared node, a cycle, slots, per-rank and global state (see the .cpp).
Sample sample();
/// A chain root -> n1 -> n2 -> ... of `depth` nodes, the last holding a tensor.
GlobalTable chain(uint32_t depth);

/// Runs `decode`, which must throw a cairn::Error of `code` whose text holds `needle`, `names`
/// and the checkpoint "ck.h5".
void expect_error(const std::function<void()>& decode, const std::string& needle,
                  const std::string& names, ErrorCode code = ErrorCode::kCorrupt);

void put32(std::string& b, uint64_t at, uint32_t v);
void put64(std::string& b, uint64_t at, uint64_t v);
uint64_t get64(const std::string& b, uint64_t at);
/// The encoder writes the directory in id order: the entry of section `id`.
uint64_t entry(uint32_t id);
uint64_t section_offset(const std::string& b, uint32_t id);

}  // namespace cairn::table_testing
