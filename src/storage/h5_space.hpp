// SPDX-License-Identifier: Apache-2.0
#pragma once
// Dataspaces for boxes: the file selection of a region and the memory selection of the same
// region inside a buffer that holds a larger box.
#include <cstdint>
#include <utility>

#include "cairn/tensor/box.hpp"
#include "storage/h5_handle.hpp"

namespace cairn::h5 {

/// A dataspace of `shape` (scalar for rank 0) with nothing selected yet.
Dataspace make_space(const Shape& shape);
/// A dataspace of `extent` with `region` (given in the same coordinates as `origin`) selected.
Dataspace select_region(const Shape& extent, const Shape& origin, const Box& region);

/// Local. The bytes from the first to the last element of `region` inside a row-major array of
/// `shape` with elements of `element_size` bytes: {offset of the first byte, length}; {0, 0} for an
/// empty region. For a region made of whole trailing rows this is exactly its bytes.
std::pair<int64_t, int64_t> region_byte_span(const Shape& shape, const Box& region,
                                             int64_t element_size);

}  // namespace cairn::h5
