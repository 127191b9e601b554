// SPDX-License-Identifier: Apache-2.0
#include "cairn/tensor/variable.hpp"

#include <string>
#include <utility>
#include <vector>

namespace cairn {

Variable::Variable(int rank, int nranks, DType dtype, Shape shape, Layout layout)
    : dtype_(dtype),
      shape_(std::move(shape)),
      layout_(std::move(layout)),
      rank_(rank),
      nranks_(nranks) {
  if (dtype_size(dtype_) == 0)
    throw Error(ErrorCode::kInvalidArgument,
                "unknown dtype " + std::to_string(static_cast<int>(dtype_)));
  // The file format's limits are checked here, where they are a user's mistake, not when a
  // save's manifest is decoded, where they would read as damage.
  if (shape_.size() > kMaxAxes)
    throw Error(ErrorCode::kInvalidArgument, "a variable has at most " + std::to_string(kMaxAxes) +
                                                 " axes, shape " + shape_to_string(shape_) +
                                                 " has " + std::to_string(shape_.size()));
  layout_.validate(shape_, nranks_, "");  // negative extents, element count overflow, boxes
  const auto element_size = static_cast<int64_t>(dtype_size(dtype_));
  if (int64_t bytes = 0;
      __builtin_mul_overflow(shape_volume(shape_), element_size, &bytes) || bytes > kMaxTensorBytes)
    throw Error(ErrorCode::kInvalidArgument, "a variable of shape " + shape_to_string(shape_) +
                                                 " and dtype " + std::string(dtype_name(dtype_)) +
                                                 " exceeds the largest tensor, " +
                                                 std::to_string(kMaxTensorBytes) + " bytes");
  boxes_ = layout_.boxes_for(rank_, nranks_, shape_);

  int64_t total_bytes = 0;
  box_byte_offsets_.reserve(boxes_.size() + 1);
  for (const Box& box : boxes_) {
    box_byte_offsets_.push_back(total_bytes);
    const int64_t elements = box.volume();  // bounded by the validated shape's volume
    local_elements_ += elements;
    total_bytes += elements * element_size;
  }
  box_byte_offsets_.push_back(total_bytes);  // end of the last box, so box i spans [i, i+1)
  try {
    data_ = ZeroedBuffer(static_cast<std::size_t>(total_bytes));
  } catch (const Error&) {
    throw Error(ErrorCode::kIo,
                "cannot allocate " + std::to_string(total_bytes) +
                    " bytes for this rank's part of a " + std::string(dtype_name(dtype_)) +
                    " variable of shape " + shape_to_string(shape_),
                {.rank = rank_, .operation = "create variable"});
  }
}

namespace {

// [begin, size) of local box `i` in the variable's storage.
std::pair<std::size_t, std::size_t> box_byte_range(const std::vector<int64_t>& box_byte_offsets,
                                                   std::size_t i) {
  const std::size_t boxes = box_byte_offsets.size() - 1;
  if (i >= boxes)
    throw Error(ErrorCode::kInvalidArgument, "local box " + std::to_string(i) +
                                                 " does not exist; this rank holds " +
                                                 std::to_string(boxes) + " boxes");
  const auto begin = static_cast<std::size_t>(box_byte_offsets[i]);
  const auto end = static_cast<std::size_t>(box_byte_offsets[i + 1]);
  return {begin, end - begin};
}

}  // namespace

std::span<std::byte> Variable::box_bytes(std::size_t i) {
  const auto [begin, size] = box_byte_range(box_byte_offsets_, i);
  return std::span<std::byte>(data_).subspan(begin, size);
}

std::span<const std::byte> Variable::box_bytes(std::size_t i) const {
  const auto [begin, size] = box_byte_range(box_byte_offsets_, i);
  return std::span<const std::byte>(data_).subspan(begin, size);
}

void Variable::check_type(DType requested) const {
  if (requested != dtype_)
    throw Error(ErrorCode::kInvalidArgument, "variable has dtype " +
                                                 std::string(dtype_name(dtype_)) + ", requested " +
                                                 std::string(dtype_name(requested)));
}

}  // namespace cairn
