// SPDX-License-Identifier: Apache-2.0
#include "cairn/tensor/layout.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include "cairn/core/error.hpp"

namespace cairn {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& key, const std::string& message,
                       const std::string& box = {}) {
  ErrorContext context;
  context.key = key;
  context.box = box;
  throw Error(code, message, std::move(context));
}

// shape_volume() with the tensor's key in the error.
int64_t checked_volume(const Shape& shape, const std::string& key) {
  int64_t volume = 1;
  for (int64_t extent : shape) {
    if (extent < 0)
      fail(ErrorCode::kInvalidArgument, key,
           "shape " + shape_to_string(shape) + " has a negative extent");
    if (__builtin_mul_overflow(volume, extent, &volume))
      fail(ErrorCode::kInvalidArgument, key,
           "shape " + shape_to_string(shape) + " has more elements than fit in int64");
  }
  return volume;
}

std::string grid_to_string(const std::vector<int>& dims) {
  std::string text;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text += "x";
    text += std::to_string(dims[i]);
  }
  return text;
}

// The message of `error` without its leading "<code>: ", to re-raise it with more context.
std::string owned_box(int rank, const Box& box) {
  return "rank " + std::to_string(rank) + "'s box " + box.to_string();
}

// The first region of `region`, in row-major order, that no box in `boxes` touches; nullopt if
// the boxes cover it. It cuts the region at box boundaries, outermost axis first, and searches the
// lower part before the upper one, so the returned region's first element is the first uncovered
// element in row-major order.
std::optional<Box> first_uncovered(Box region, std::vector<const Box*> boxes) {
  while (true) {
    std::vector<const Box*> touching;
    for (const Box* box : boxes) {
      if (!intersect(*box, region)) continue;
      if (contains(*box, region)) return std::nullopt;
      touching.push_back(box);
    }
    if (touching.empty()) return region;

    // A touching box that does not contain the region has a boundary strictly inside it.
    std::size_t axis = 0;
    int64_t cut = std::numeric_limits<int64_t>::max();
    for (; axis < region.rank(); ++axis) {
      const int64_t begin = region.offset[axis];
      const int64_t end = begin + region.count[axis];
      for (const Box* box : touching)
        for (int64_t edge : {box->offset[axis], box->offset[axis] + box->count[axis]})
          if (edge > begin && edge < end) cut = std::min(cut, edge);
      if (cut != std::numeric_limits<int64_t>::max()) break;
    }
    if (axis == region.rank()) return std::nullopt;  // unreachable: see above

    // The lower part has no boundary left on `axis`, so this recursion goes at most rank deep;
    // the upper part is searched by the next iteration.
    Box lower = region;
    lower.count[axis] = cut - region.offset[axis];
    if (auto uncovered = first_uncovered(lower, touching)) return uncovered;
    region.count[axis] -= cut - region.offset[axis];
    region.offset[axis] = cut;
    boxes = std::move(touching);
  }
}

}  // namespace

Layout Layout::replicated() {
  return Layout{};
}

Layout Layout::block(int axis) {
  Layout layout;
  layout.kind_ = Kind::kBlock;
  layout.axis_ = axis;
  return layout;
}

Layout Layout::grid(std::vector<int> grid) {
  for (int dim : grid)
    if (dim < 1)
      throw Error(ErrorCode::kInvalidArgument,
                  "grid(" + grid_to_string(grid) + ") needs a positive number of ranks per axis");
  Layout layout;
  layout.kind_ = Kind::kGrid;
  layout.grid_ = std::move(grid);
  return layout;
}

Layout Layout::explicit_boxes(std::vector<std::vector<Box>> boxes) {
  Layout layout;
  layout.kind_ = Kind::kExplicit;
  layout.explicit_ = std::move(boxes);
  return layout;
}

std::vector<Box> Layout::boxes_for(int rank, int nranks, const Shape& shape) const {
  if (nranks < 1 || rank < 0 || rank >= nranks)
    throw Error(ErrorCode::kInvalidArgument, "rank " + std::to_string(rank) +
                                                 " is not a rank of a job of " +
                                                 std::to_string(nranks) + " ranks");
  switch (kind_) {
    case Kind::kReplicated:
      return {Box::whole(shape)};
    case Kind::kBlock: {
      // A scalar cannot be split: rank 0 owns it. A negative axis is refused even then: the
      // format stores the axis, and readers refuse a negative one.
      if (axis_ < 0) throw Error(ErrorCode::kInvalidArgument, describe() + " has a negative axis");
      if (shape.empty()) return rank == 0 ? std::vector<Box>{Box{}} : std::vector<Box>{};
      if (axis_ < 0 || static_cast<std::size_t>(axis_) >= shape.size())
        throw Error(ErrorCode::kInvalidArgument, describe() + " does not fit shape " +
                                                     shape_to_string(shape) + " of rank " +
                                                     std::to_string(shape.size()));
      const auto [begin, end] = block_range(shape[axis_], nranks, rank);
      if (begin == end) return {};
      Box box = Box::whole(shape);
      box.offset[axis_] = begin;
      box.count[axis_] = end - begin;
      return {box};
    }
    case Kind::kGrid: {
      int64_t cells = 1;
      for (int dim : grid_) cells *= dim;
      if (cells != nranks)
        throw Error(ErrorCode::kInvalidArgument, describe() + " has " + std::to_string(cells) +
                                                     " cells but the job has " +
                                                     std::to_string(nranks) + " ranks");
      if (grid_.size() > shape.size())
        throw Error(ErrorCode::kInvalidArgument,
                    describe() + " has more axes than shape " + shape_to_string(shape));
      Box box = Box::whole(shape);
      int remaining = rank;  // row-major: the last grid axis varies fastest
      for (std::size_t axis = grid_.size(); axis-- > 0;) {
        const int coordinate = remaining % grid_[axis];
        remaining /= grid_[axis];
        const auto [begin, end] = block_range(shape[axis], grid_[axis], coordinate);
        if (begin == end) return {};
        box.offset[axis] = begin;
        box.count[axis] = end - begin;
      }
      return {box};
    }
    case Kind::kExplicit:
      if (static_cast<std::size_t>(rank) < explicit_.size()) return explicit_[rank];
      return {};
  }
  return {};
}

void Layout::validate(const Shape& shape, int nranks, const std::string& key) const {
  const int64_t volume = checked_volume(shape, key);
  if (nranks < 1)
    fail(ErrorCode::kInvalidArgument, key,
         "a job needs at least one rank, got " + std::to_string(nranks));
  if (kind_ == Kind::kReplicated) return;
  if (kind_ == Kind::kExplicit && explicit_.size() != static_cast<std::size_t>(nranks))
    fail(ErrorCode::kShardMismatch, key,
         describe() + " lists boxes for " + std::to_string(explicit_.size()) +
             " ranks but the job has " + std::to_string(nranks) + " ranks");

  if (kind_ != Kind::kExplicit) {
    // Block and grid boxes lie inside the shape, disjoint and covering it, by construction: only
    // the parameters can be wrong (axis, grid size), and boxes_for checks them for any rank. Not
    // computing every rank's box keeps this O(1) per tensor, which every rank runs at every plan
    // (O(ranks) per rank, O(ranks^2) for the job, was measurable at 128 ranks).
    try {
      boxes_for(0, nranks, shape);
    } catch (const Error& e) {
      fail(e.code(), key, e.message());
    }
    return;
  }
  std::vector<std::pair<int, Box>> owned;
  for (int rank = 0; rank < nranks; ++rank) {
    try {
      for (Box& box : boxes_for(rank, nranks, shape)) owned.emplace_back(rank, std::move(box));
    } catch (const Error& e) {
      fail(e.code(), key, e.message());
    }
  }
  for (const auto& [rank, box] : owned) {
    if (box.offset.size() != shape.size() || box.count.size() != shape.size())
      fail(ErrorCode::kShardMismatch, key,
           owned_box(rank, box) + " has rank " + std::to_string(box.count.size()) + " but shape " +
               shape_to_string(shape) + " has rank " + std::to_string(shape.size()),
           box.to_string());
    if (!inside_shape(box, shape))
      fail(ErrorCode::kShardMismatch, key,
           owned_box(rank, box) + " lies outside shape " + shape_to_string(shape), box.to_string());
  }
  int64_t owned_volume = 0;
  for (std::size_t i = 0; i < owned.size(); ++i) {
    for (std::size_t j = i + 1; j < owned.size(); ++j) {
      const auto overlap = intersect(owned[i].second, owned[j].second);
      if (overlap && !overlap->empty())
        fail(ErrorCode::kShardMismatch, key,
             owned_box(owned[i].first, owned[i].second) + " and " +
                 owned_box(owned[j].first, owned[j].second) + " overlap in " + overlap->to_string(),
             overlap->to_string());
    }
    // Disjoint boxes inside the shape: the sum cannot exceed the shape's volume.
    owned_volume += owned[i].second.volume();
  }
  if (owned_volume == volume) return;

  std::vector<const Box*> boxes;
  for (const auto& entry : owned) boxes.push_back(&entry.second);
  const std::optional<Box> gap = first_uncovered(Box::whole(shape), boxes);
  const Box region = gap.value_or(Box::whole(shape));
  fail(ErrorCode::kShardMismatch, key,
       "no rank owns element " + shape_to_string(region.offset) + " (uncovered region " +
           region.to_string() + " of shape " + shape_to_string(shape) + ")",
       region.to_string());
}

std::string Layout::describe() const {
  switch (kind_) {
    case Kind::kReplicated:
      return "replicated";
    case Kind::kBlock:
      return "block(axis=" + std::to_string(axis_) + ")";
    case Kind::kGrid:
      return "grid(" + grid_to_string(grid_) + ")";
    case Kind::kExplicit: {
      std::size_t boxes = 0;
      for (const auto& rank_boxes : explicit_) boxes += rank_boxes.size();
      return "explicit(" + std::to_string(boxes) + " boxes)";
    }
  }
  return "unknown";
}

std::pair<int64_t, int64_t> block_range(int64_t extent, int parts, int index) {
  if (extent < 0 || parts < 1 || index < 0 || index >= parts)
    throw Error(ErrorCode::kInvalidArgument, "block_range: part " + std::to_string(index) + " of " +
                                                 std::to_string(parts) + " of extent " +
                                                 std::to_string(extent) + " does not exist");
  const int64_t base = extent / parts;
  const int64_t extra = extent % parts;  // the first `extra` parts get one more slice
  const int64_t begin = index * base + std::min<int64_t>(index, extra);
  const int64_t end = begin + base + (index < extra ? 1 : 0);
  return {begin, end};
}

}  // namespace cairn
