// SPDX-License-Identifier: Apache-2.0
#pragma once
// Writing a plain HDF5 file for tools that know nothing of cairn (h5py, h5dump, HDFView): one
// dataset per tensor, filled region by region so that no tensor has to be held in memory.
#include <string>

#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"
#include "storage/h5_handle.hpp"

namespace cairn::detail {

class PlainH5Writer {
 public:
  /// Local. Creates (or truncates) `path` with the default (POSIX) driver.
  explicit PlainH5Writer(std::string path);
  PlainH5Writer(const PlainH5Writer&) = delete;
  PlainH5Writer& operator=(const PlainH5Writer&) = delete;

  /// Local. Creates dataset `name` (a '/'-separated path; groups on the way are created) of
  /// `dtype` and `shape` with the element types cairn's own files use, and makes it the target of
  /// write(). Empty tensors get a dataset of extent 0; rank 0 is a scalar dataset.
  void begin_dataset(const std::string& name, DType dtype, const Shape& shape);
  /// Local. Writes `region` of the current dataset from `data` (the region's elements,
  /// row-major).
  void write(const Box& region, const void* data);
  /// Local. Sets a string attribute on the root group.
  void set_root_attribute(const std::string& name, const std::string& value);
  /// Local. Closes the current dataset and the file, reporting any failure (the destructor only
  /// releases).
  void close();

 private:
  std::string path_;
  std::string name_;
  Shape shape_;
  h5::File file_;
  h5::Datatype type_;
  h5::Dataset dataset_;
};

}  // namespace cairn::detail
