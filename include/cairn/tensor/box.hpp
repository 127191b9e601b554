// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shapes and boxes (hyperslabs): an offset and a count per axis, in elements.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cairn {

using Shape = std::vector<int64_t>;

struct Box {
  Shape offset;
  Shape count;

  friend bool operator==(const Box&, const Box&) = default;
  /// Local. The box covering all of `shape`.
  static Box whole(const Shape& shape);
  std::size_t rank() const noexcept { return count.size(); }
  /// Local. Number of elements (1 for a rank-0 box, 0 if any count is 0).
  int64_t volume() const noexcept;
  bool empty() const noexcept { return volume() == 0; }
  /// Local. "[0:4, 2:8]" (half-open ranges per axis).
  std::string to_string() const;
};

/// Local. Elements in a shape; throws cairn::Error on negative extents or overflow.
int64_t shape_volume(const Shape& shape);
std::string shape_to_string(const Shape& shape);

/// Local. The intersection of two boxes of the same rank, or nullopt if it is empty.
std::optional<Box> intersect(const Box& a, const Box& b);
/// Local. Whether `inner` lies entirely inside `outer`.
bool contains(const Box& outer, const Box& inner);
/// Local. Whether `box` lies inside a tensor of `shape`.
bool inside_shape(const Box& box, const Shape& shape);

/// Local. Splits `box` into disjoint, row-major-ordered sub-boxes that cover it, each at most
/// `max_bytes` (but never smaller than one element), so that large shards are checksummed and
/// read in bounded pieces. Pieces are runs of whole slices of the outermost axis possible; a row
/// is cut only when a single innermost row exceeds `max_bytes`. An empty box yields no pieces.
std::vector<Box> split_box(const Box& box, int64_t element_size, int64_t max_bytes);

/// Local. Copies the elements of `region` from `src` (laid out row-major as box `src_box`) into
/// `dst` (laid out row-major as box `dst_box`). `region` must lie in both boxes.
void copy_region(const void* src, const Box& src_box, void* dst, const Box& dst_box,
                 const Box& region, int64_t element_size);

}  // namespace cairn
