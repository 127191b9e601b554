#pragma once
// Dataspaces for boxes: the file selection of a region and the memory selection of the same
// region inside a buffer that holds a larger box.
#include "cairn/tensor/box.hpp"
#include "storage/h5_handle.hpp"

namespace cairn::h5 {

/// A dataspace of `shape` (scalar for rank 0) with nothing selected yet.
Dataspace make_space(const Shape& shape);
/// A dataspace of `extent` with `region` (given in the same coordinates as `origin`) selected.
Dataspace select_region(const Shape& extent, const Shape& origin, const Box& region);

}  // namespace cairn::h5
