// SPDX-License-Identifier: Apache-2.0
#include "storage/h5_space.hpp"

#include <vector>

#include "storage/h5_error.hpp"

namespace cairn::h5 {

Dataspace make_space(const Shape& shape) {
  const ErrorContext ctx{.operation = "create dataspace"};
  if (shape.empty()) return Dataspace(check_id(H5Screate(H5S_SCALAR), "H5Screate", ctx));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Dataspace(check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                            "H5Screate_simple", ctx));
}

Dataspace select_region(const Shape& extent, const Shape& origin, const Box& region) {
  const ErrorContext ctx{.box = region.to_string(), .operation = "select region"};
  Dataspace space = make_space(extent);
  if (region.volume() == 0) {
    check_status(H5Sselect_none(space.get()), "H5Sselect_none", ctx);
  } else if (!extent.empty()) {
    std::vector<hsize_t> start(extent.size()), count(extent.size());
    for (std::size_t d = 0; d < extent.size(); ++d) {
      start[d] = static_cast<hsize_t>(region.offset[d] - origin[d]);
      count[d] = static_cast<hsize_t>(region.count[d]);
    }
    check_status(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                     count.data(), nullptr),
                 "H5Sselect_hyperslab", ctx);
  }
  return space;
}

std::pair<int64_t, int64_t> region_byte_span(const Shape& shape, const Box& region,
                                             int64_t element_size) {
  if (region.empty() || region.rank() != shape.size()) return {0, 0};
  int64_t first = 0, last = 0, stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    first += region.offset[d] * stride;
    last += (region.offset[d] + region.count[d] - 1) * stride;
    stride *= shape[d];
  }
  return {first * element_size, (last - first + 1) * element_size};
}

}  // namespace cairn::h5
