// SPDX-License-Identifier: Apache-2.0
#include "storage/plain_h5_writer.hpp"

#include "storage/h5_error.hpp"
#include "storage/h5_space.hpp"
#include "storage/h5_types.hpp"

namespace cairn::detail {

PlainH5Writer::PlainH5Writer(std::string path) : path_(std::move(path)) {
  h5::silence_error_printing();
  const ErrorContext ctx{.checkpoint = path_, .operation = "create plain HDF5 file"};
  h5::PropList fapl(h5::check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", ctx));
  h5::check_status(H5Pset_file_locking(fapl.get(), false, true), "H5Pset_file_locking", ctx);
  file_ = h5::File(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!file_.valid()) h5::throw_error("cannot create the output file", ctx, ErrorCode::kIo);
}

void PlainH5Writer::begin_dataset(const std::string& name, DType dtype, const Shape& shape) {
  const ErrorContext ctx{.checkpoint = path_, .key = name, .operation = "create dataset"};
  h5::check_status(dataset_.close(), "H5Dclose", ctx);
  name_ = name;
  shape_ = shape;
  type_ = h5::make_type(dtype);
  h5::Dataspace space = h5::make_space(shape);
  h5::PropList lcpl(h5::check_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", ctx));
  h5::check_status(H5Pset_create_intermediate_group(lcpl.get(), 1),
                   "H5Pset_create_intermediate_group", ctx);
  h5::PropList dcpl(h5::check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", ctx));
  h5::check_status(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), "H5Pset_layout", ctx);
  dataset_ = h5::Dataset(H5Dcreate2(file_.get(), name.c_str(), type_.get(), space.get(), lcpl.get(),
                                    dcpl.get(), H5P_DEFAULT));
  if (!dataset_.valid()) h5::throw_error("cannot create the dataset", ctx, ErrorCode::kIo);
}

void PlainH5Writer::write(const Box& region, const void* data) {
  const ErrorContext ctx{
      .checkpoint = path_, .key = name_, .box = region.to_string(), .operation = "write"};
  if (region.volume() == 0) return;
  h5::Dataspace file_space = h5::select_region(shape_, Shape(shape_.size(), 0), region);
  h5::Dataspace memory = h5::make_space(region.count);
  if (H5Dwrite(dataset_.get(), type_.get(), memory.get(), file_space.get(), H5P_DEFAULT, data) < 0)
    h5::throw_error("cannot write", ctx, ErrorCode::kIo);
}

void PlainH5Writer::set_root_attribute(const std::string& name, const std::string& value) {
  const ErrorContext ctx{.checkpoint = path_, .key = name, .operation = "write attribute"};
  h5::Datatype type(h5::check_id(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx));
  h5::check_status(H5Tset_size(type.get(), value.size() + 1), "H5Tset_size", ctx);
  h5::Dataspace space(h5::check_id(H5Screate(H5S_SCALAR), "H5Screate", ctx));
  h5::Attribute attr(
      H5Acreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) h5::throw_error("cannot create the attribute", ctx, ErrorCode::kIo);
  h5::check_status(H5Awrite(attr.get(), type.get(), value.c_str()), "H5Awrite", ctx);
  h5::check_status(attr.close(), "H5Aclose", ctx);
}

void PlainH5Writer::close() {
  const ErrorContext ctx{.checkpoint = path_, .operation = "close plain HDF5 file"};
  h5::check_status(dataset_.close(), "H5Dclose", ctx);
  if (file_.close() < 0) h5::throw_error("cannot close the output file", ctx, ErrorCode::kIo);
}

}  // namespace cairn::detail
