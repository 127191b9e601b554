// SPDX-License-Identifier: Apache-2.0
#pragma once
// A Variable is a global tensor of which this rank holds the boxes its layout assigns it.
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "cairn/comm/session.hpp"
#include "cairn/core/error.hpp"
#include "cairn/graph/trackable.hpp"
#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"
#include "cairn/tensor/layout.hpp"
#include "cairn/tensor/zeroed_buffer.hpp"

namespace cairn {

/// The most axes a variable may have; the file format's limit.
inline constexpr std::size_t kMaxAxes = 32;
/// The largest tensor, in bytes, the file format accepts (2^56).
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 56;

class Variable : public Trackable {
 public:
  /// Local. Allocates this rank's boxes, zero-initialized (large ones without a pass over memory:
  /// see ZeroedBuffer). The layout is validated against the shape.
  /// Throws kInvalidArgument for an unknown dtype, more than kMaxAxes axes, a negative extent or
  /// a tensor above kMaxTensorBytes, and kIo naming the size if this rank's boxes cannot be
  /// allocated.
  Variable(int rank, int nranks, DType dtype, Shape shape, Layout layout);
  Variable(const Session& session, DType dtype, Shape shape, Layout layout)
      : Variable(session.rank(), session.size(), dtype, std::move(shape), std::move(layout)) {}

  template <class T>
  static std::shared_ptr<Variable> create(const Session& session, Shape shape,
                                          Layout layout = Layout::replicated()) {
    return std::make_shared<Variable>(session, dtype_of<T>, std::move(shape), std::move(layout));
  }

  const char* kind() const noexcept override { return "variable"; }
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  const Layout& layout() const noexcept { return layout_; }
  int rank() const noexcept { return rank_; }
  int nranks() const noexcept { return nranks_; }

  /// Local. The boxes of the global tensor this rank holds, in storage order.
  const std::vector<Box>& local_boxes() const noexcept { return boxes_; }
  /// Local. Elements this rank holds over all its boxes.
  int64_t local_elements() const noexcept { return local_elements_; }
  /// Local. Raw bytes of local box `i` (row-major within the box).
  std::span<std::byte> box_bytes(std::size_t i);
  std::span<const std::byte> box_bytes(std::size_t i) const;
  /// Local. All local bytes: the boxes one after another.
  std::span<std::byte> bytes() noexcept { return data_; }
  std::span<const std::byte> bytes() const noexcept { return data_; }

  /// Local. Typed view of local box `i`; throws if T does not match the dtype.
  template <class T>
  std::span<T> local(std::size_t i = 0) {
    check_type(dtype_of<T>);
    auto b = box_bytes(i);
    return {reinterpret_cast<T*>(b.data()), b.size() / sizeof(T)};
  }
  template <class T>
  std::span<const T> local(std::size_t i = 0) const {
    check_type(dtype_of<T>);
    auto b = box_bytes(i);
    return {reinterpret_cast<const T*>(b.data()), b.size() / sizeof(T)};
  }
  /// Local. Typed view of all local elements (boxes concatenated).
  template <class T>
  std::span<T> local_all() {
    check_type(dtype_of<T>);
    return {reinterpret_cast<T*>(data_.data()), data_.size() / sizeof(T)};
  }

 private:
  void check_type(DType requested) const;
  DType dtype_;
  Shape shape_;
  Layout layout_;
  int rank_;
  int nranks_;
  std::vector<Box> boxes_;
  std::vector<int64_t> box_byte_offsets_;
  int64_t local_elements_ = 0;
  ZeroedBuffer data_;
};

}  // namespace cairn
