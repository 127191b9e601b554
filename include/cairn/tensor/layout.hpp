// SPDX-License-Identifier: Apache-2.0
#pragma once
// How a global tensor is divided among the ranks of a job. A Layout is global knowledge: every
// rank can compute every rank's boxes, which is what lets validation and coverage accounting run
// without communication.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cairn/tensor/box.hpp"

namespace cairn {

class Layout {
 public:
  enum class Kind { kReplicated, kBlock, kGrid, kExplicit };

  /// Every rank holds the whole tensor; it is written once.
  static Layout replicated();
  /// Contiguous blocks along `axis`; the first (extent % ranks) ranks get one extra slice. Ranks
  /// beyond the extent own nothing.
  static Layout block(int axis = 0);
  /// An N-D block decomposition over a process grid (row-major rank order). The product of `grid`
  /// must equal the number of ranks; ranks split each axis as block() does.
  static Layout grid(std::vector<int> grid);
  /// Explicit boxes for every rank: `boxes[r]` are rank r's boxes (possibly none).
  static Layout explicit_boxes(std::vector<std::vector<Box>> boxes);

  Kind kind() const noexcept { return kind_; }
  int axis() const noexcept { return axis_; }
  const std::vector<int>& grid_dims() const noexcept { return grid_; }

  /// Local. The boxes rank `rank` of `nranks` owns of a tensor of `shape`.
  std::vector<Box> boxes_for(int rank, int nranks, const Shape& shape) const;
  /// Local. Checks that the layout suits `shape` and `nranks`: boxes inside the shape, no
  /// overlaps, full coverage (replicated layouts are exempt from the overlap rule). Throws a
  /// cairn::Error naming `key`, the offending rank and box, or the first uncovered region.
  void validate(const Shape& shape, int nranks, const std::string& key) const;
  /// Local. A stable description, e.g. "block(axis=0)", used in the manifest and error messages.
  std::string describe() const;

 private:
  Kind kind_ = Kind::kReplicated;
  int axis_ = 0;
  std::vector<int> grid_;
  std::vector<std::vector<Box>> explicit_;
};

/// Local. The [begin, end) range of `extent` that part `index` of `parts` gets in a block split.
std::pair<int64_t, int64_t> block_range(int64_t extent, int parts, int index);

}  // namespace cairn
