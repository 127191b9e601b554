// SPDX-License-Identifier: Apache-2.0
#include "cairn/tensor/box.hpp"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>

#include "cairn/core/error.hpp"

namespace cairn {
namespace {

// Below this many bytes a copy is not worth waking the OpenMP team for.
constexpr int64_t kParallelCopyBytes = int64_t{1} << 20;

std::string join_ranges(const Box& box) {
  std::string text = "[";
  for (std::size_t d = 0; d < box.rank(); ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(box.offset[d]) + ":" + std::to_string(box.offset[d] + box.count[d]);
  }
  return text + "]";
}

// Row-major element strides of a box: stride[d] elements separate neighbours along axis d.
Shape row_major_strides(const Shape& count) {
  Shape stride(count.size(), 1);
  for (std::size_t d = count.size(); d-- > 1;) stride[d - 1] = stride[d] * count[d];
  return stride;
}

// Element index, inside `box`'s row-major storage, of the global coordinate `global_origin`.
int64_t element_offset(const Box& box, const Shape& stride, const Shape& global_origin) {
  int64_t offset = 0;
  for (std::size_t d = 0; d < box.rank(); ++d)
    offset += (global_origin[d] - box.offset[d]) * stride[d];
  return offset;
}

}  // namespace

Box Box::whole(const Shape& shape) {
  return Box{Shape(shape.size(), 0), shape};
}

int64_t Box::volume() const noexcept {
  int64_t volume = 1;
  for (int64_t extent : count) {
    if (extent <= 0) return 0;
    // Saturate instead of overflowing: volume() cannot throw, and shape_volume() reports overflow.
    if (__builtin_mul_overflow(volume, extent, &volume)) return std::numeric_limits<int64_t>::max();
  }
  return volume;
}

std::string Box::to_string() const {
  return join_ranges(*this);
}

int64_t shape_volume(const Shape& shape) {
  int64_t volume = 1;
  for (int64_t extent : shape) {
    if (extent < 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "shape " + shape_to_string(shape) + " has a negative extent");
    if (__builtin_mul_overflow(volume, extent, &volume))
      throw Error(ErrorCode::kInvalidArgument,
                  "shape " + shape_to_string(shape) + " has more elements than fit in int64");
  }
  return volume;
}

std::string shape_to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(shape[d]);
  }
  return text + "]";
}

std::optional<Box> intersect(const Box& a, const Box& b) {
  if (a.rank() != b.rank()) return std::nullopt;
  Box overlap{Shape(a.rank()), Shape(a.rank())};
  for (std::size_t d = 0; d < a.rank(); ++d) {
    const int64_t begin = std::max(a.offset[d], b.offset[d]);
    const int64_t end = std::min(a.offset[d] + a.count[d], b.offset[d] + b.count[d]);
    if (end <= begin) return std::nullopt;
    overlap.offset[d] = begin;
    overlap.count[d] = end - begin;
  }
  return overlap;
}

bool contains(const Box& outer, const Box& inner) {
  if (outer.rank() != inner.rank()) return false;
  for (std::size_t d = 0; d < outer.rank(); ++d) {
    // Written so that hostile extents (a manifest's pieces) cannot overflow: `outer` is valid.
    if (inner.count[d] < 0 || inner.offset[d] < outer.offset[d]) return false;
    if (inner.count[d] > outer.offset[d] + outer.count[d] - inner.offset[d]) return false;
  }
  return true;
}

bool inside_shape(const Box& box, const Shape& shape) {
  if (box.offset.size() != shape.size() || box.count.size() != shape.size()) return false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (box.offset[d] < 0 || box.count[d] < 0) return false;
    if (box.offset[d] > shape[d] || box.count[d] > shape[d] - box.offset[d]) return false;
  }
  return true;
}

std::vector<Box> split_box(const Box& box, int64_t element_size, int64_t max_bytes) {
  if (element_size <= 0 || max_bytes <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                "split_box: element size and piece size must be positive, got " +
                    std::to_string(element_size) + " and " + std::to_string(max_bytes));
  if (box.offset.size() != box.count.size())
    throw Error(ErrorCode::kInvalidArgument, "split_box: box offset and count differ in rank");
  if (box.rank() == 0) return {box};
  if (box.empty()) return {};

  // Find the outermost axis `split` whose single slices (one index there, all inner axes whole)
  // fit in max_bytes; pieces are then runs of slices along it. When not even one innermost row
  // fits, `split` is the innermost axis and a row is cut into runs of elements, so that a 1-D
  // shard of gigabytes still yields bounded pieces.
  const int rank = static_cast<int>(box.rank());
  int split = rank - 1;
  int64_t slice_bytes = element_size;  // bytes of one index along axis `split`
  while (split > 0) {
    int64_t wider = 0;
    if (__builtin_mul_overflow(slice_bytes, box.count[split], &wider) || wider > max_bytes) break;
    slice_bytes = wider;
    --split;
  }
  const int64_t slices_per_piece = std::max<int64_t>(1, max_bytes / slice_bytes);
  const int64_t chunks_along_split = (box.count[split] + slices_per_piece - 1) / slices_per_piece;

  int64_t outer_indices = 1;
  for (int d = 0; d < split; ++d) outer_indices *= box.count[d];
  std::vector<Box> pieces;
  pieces.reserve(static_cast<std::size_t>(outer_indices * chunks_along_split));

  Box piece = box;
  for (int d = 0; d < split; ++d) piece.count[d] = 1;
  for (int64_t outer = 0; outer < outer_indices; ++outer) {
    for (int64_t begin = 0; begin < box.count[split]; begin += slices_per_piece) {
      piece.offset[split] = box.offset[split] + begin;
      piece.count[split] = std::min(slices_per_piece, box.count[split] - begin);
      pieces.push_back(piece);
    }
    // Advance the outer axes like an odometer, innermost of them fastest (row-major order).
    for (int d = split - 1; d >= 0; --d) {
      if (++piece.offset[d] < box.offset[d] + box.count[d]) break;
      piece.offset[d] = box.offset[d];
    }
  }
  return pieces;
}

void copy_region(const void* src, const Box& src_box, void* dst, const Box& dst_box,
                 const Box& region, int64_t element_size) {
  if (element_size <= 0)
    throw Error(ErrorCode::kInvalidArgument, "copy_region: element size must be positive");
  if (!contains(src_box, region) || !contains(dst_box, region))
    throw Error(ErrorCode::kInvalidArgument,
                "copy_region: region " + region.to_string() + " is not inside source box " +
                    src_box.to_string() + " and destination box " + dst_box.to_string());
  if (region.empty()) return;
  const auto* from = static_cast<const std::byte*>(src);
  auto* to = static_cast<std::byte*>(dst);
  const int rank = static_cast<int>(region.rank());
  if (rank == 0) {
    std::memcpy(to, from, static_cast<std::size_t>(element_size));
    return;
  }

  // Inner axes that the region spans completely in both boxes are contiguous in both, so they
  // merge with the next axis out into one longer run: whole rows become one memcpy per outer
  // index, and a fully contiguous region a single memcpy.
  int run_axis = rank - 1;
  int64_t run_elements = region.count[run_axis];
  while (run_axis > 0 && region.count[run_axis] == src_box.count[run_axis] &&
         region.count[run_axis] == dst_box.count[run_axis]) {
    --run_axis;
    run_elements *= region.count[run_axis];
  }
  const auto run_bytes = static_cast<std::size_t>(run_elements * element_size);
  int64_t runs = 1;
  for (int d = 0; d < run_axis; ++d) runs *= region.count[d];

  const Shape src_stride = row_major_strides(src_box.count);
  const Shape dst_stride = row_major_strides(dst_box.count);
  const int64_t src_base = element_offset(src_box, src_stride, region.offset);
  const int64_t dst_base = element_offset(dst_box, dst_stride, region.offset);

  // Copies runs [first, last) in row-major order over the axes before run_axis.
  const auto copy_runs = [&](int64_t first, int64_t last) {
    Shape index(static_cast<std::size_t>(run_axis), 0);
    int64_t src_at = src_base;
    int64_t dst_at = dst_base;
    int64_t remaining = first;
    for (int d = run_axis - 1; d >= 0; --d) {
      index[d] = remaining % region.count[d];
      remaining /= region.count[d];
      src_at += index[d] * src_stride[d];
      dst_at += index[d] * dst_stride[d];
    }
    for (int64_t run = first; run < last; ++run) {
      std::memcpy(to + dst_at * element_size, from + src_at * element_size, run_bytes);
      for (int d = run_axis - 1; d >= 0; --d) {
        src_at += src_stride[d];
        dst_at += dst_stride[d];
        if (++index[d] < region.count[d]) break;
        src_at -= index[d] * src_stride[d];
        dst_at -= index[d] * dst_stride[d];
        index[d] = 0;
      }
    }
  };

  const int64_t total_bytes = runs * static_cast<int64_t>(run_bytes);
  const int threads = omp_get_max_threads();
  if (total_bytes < kParallelCopyBytes || threads < 2) {
    copy_runs(0, runs);
  } else if (runs == 1) {
    // One long contiguous run: split the memcpy itself across the team.
    const int64_t parts = threads;
    std::byte* to_run = to + dst_base * element_size;
    const std::byte* from_run = from + src_base * element_size;
#pragma omp parallel for schedule(static)
    for (int64_t part = 0; part < parts; ++part) {
      const int64_t begin = total_bytes * part / parts;
      const int64_t end = total_bytes * (part + 1) / parts;
      std::memcpy(to_run + begin, from_run + begin, static_cast<std::size_t>(end - begin));
    }
  } else {
    const int64_t parts = std::min<int64_t>(runs, int64_t{threads} * 4);
#pragma omp parallel for schedule(static)
    for (int64_t part = 0; part < parts; ++part)
      copy_runs(runs * part / parts, runs * (part + 1) / parts);
  }
}

}  // namespace cairn
