// SPDX-License-Identifier: Apache-2.0
#include "storage/container_probe.hpp"

#include <algorithm>
#include <vector>

#include "storage/h5_error.hpp"
#include "storage/h5_types.hpp"
#include "storage/schema.hpp"

namespace cairn::detail {
namespace {

constexpr int64_t kMaxManifestBytes = int64_t{1} << 32;

// The innermost frame of the HDF5 error stack: the actual cause ("truncated file: eof = ...").
std::string hdf5_cause() {
  const std::string stack = h5::take_error_stack();
  std::string last;
  std::size_t start = 0;
  while (start < stack.size()) {
    std::size_t end = stack.find('\n', start);
    if (end == std::string::npos) end = stack.size();
    std::string line = stack.substr(start, end - start);
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos) last = line.substr(first);
    start = end + 1;
  }
  return last;
}

}  // namespace

void ContainerProbe::open(const std::string& path, bool throw_on_failure) {
  h5::silence_error_printing();
  h5::PropList fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_file_locking(fapl.get(), false, true);
  file_ = h5::File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (file_.valid()) return;
  // Taken now: any HDF5 call, even closing `fapl`, clears the error stack.
  if (throw_on_failure)
    h5::throw_error("cannot reopen the checkpoint", {.checkpoint = path}, ErrorCode::kIo);
  open_failure_ = hdf5_cause();
}

ContainerProbe::ContainerProbe(const std::string& path) {
  open(path, false);
}

ContainerProbe ContainerProbe::reopen(const std::string& path) {
  ContainerProbe probe;
  probe.open(path, true);
  return probe;
}

bool ContainerProbe::link_exists(const char* name) const {
  const htri_t rc = H5Lexists(file_.get(), name, H5P_DEFAULT);
  h5::take_error_stack();
  return rc > 0;
}

bool ContainerProbe::has_format_attribute() const {
  return H5Aexists(file_.get(), schema::kFormatAttribute) > 0;
}

std::string ContainerProbe::format_attribute() const {
  h5::Attribute attr(H5Aopen(file_.get(), schema::kFormatAttribute, H5P_DEFAULT));
  if (!attr.valid()) return {};
  h5::Datatype type(H5Aget_type(attr.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    return {};
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0 || size > (1u << 20)) return {};
  std::string value(size, '\0');
  if (H5Aread(attr.get(), type.get(), value.data()) < 0) return {};
  if (auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  return value;
}

bool ContainerProbe::has_commit_mark() const {
  const bool found = H5Aexists(file_.get(), schema::kCommitAttribute) > 0;
  h5::take_error_stack();
  return found;
}

bool ContainerProbe::has_cairn_group() const {
  return link_exists(schema::kGroup);
}

std::optional<std::string> ContainerProbe::unverified_manifest_text(int64_t limit) const {
  std::optional<std::string> text;
  if (!link_exists(schema::kGroup) || !link_exists(schema::kManifestDataset)) return text;
  h5::Dataset ds(H5Dopen2(file_.get(), schema::kManifestDataset, H5P_DEFAULT));
  if (ds.valid()) {
    h5::Dataspace space(H5Dget_space(ds.get()));
    const int64_t n = space.valid() && H5Sget_simple_extent_ndims(space.get()) == 1
                          ? H5Sget_simple_extent_npoints(space.get())
                          : -1;
    if (n > 0 && n <= std::min(limit, kMaxManifestBytes)) {
      std::string bytes(static_cast<std::size_t>(n), '\0');
      h5::Datatype type = h5::make_byte_type();
      if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) >= 0)
        text = std::move(bytes);
    }
  }
  h5::take_error_stack();
  return text;
}

std::string ContainerProbe::check_tensor_dataset(const TensorRecord& t) const {
  h5::Dataset ds(H5Dopen2(file_.get(), t.dataset.c_str(), H5P_DEFAULT));
  if (!ds.valid()) {
    h5::take_error_stack();
    return "dataset " + t.dataset + " is missing";
  }
  h5::Dataspace space(H5Dget_space(ds.get()));
  const int ndims = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  Shape dims;
  if (ndims > 0) {
    std::vector<hsize_t> d(static_cast<std::size_t>(ndims));
    H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
    dims.assign(d.begin(), d.end());
  }
  if (ndims < 0 || dims != t.shape)
    return "dataset " + t.dataset + " has shape " + (ndims < 0 ? "?" : shape_to_string(dims)) +
           ", the manifest says " + shape_to_string(t.shape);
  h5::Datatype type(H5Dget_type(ds.get()));
  const bool ok = type.valid() && h5::type_matches(type.get(), t.dtype);
  h5::take_error_stack();
  if (!ok)
    return "dataset " + t.dataset + " has an element type that is not " +
           std::string(dtype_name(t.dtype)) + " (docs/format.md, Element types)";
  return {};
}

std::string ContainerProbe::check_packed_dataset(const Manifest& m) const {
  if (m.packed_bytes == 0) return {};
  const std::string name = schema::kPackedDataset;
  h5::Dataset ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  if (!ds.valid()) {
    h5::take_error_stack();
    return "dataset " + name + " is missing (the manifest has " + std::to_string(m.packed_bytes) +
           " packed bytes)";
  }
  h5::Dataspace space(H5Dget_space(ds.get()));
  h5::Datatype type(H5Dget_type(ds.get()));
  const bool ok = space.valid() && type.valid() && H5Sget_simple_extent_ndims(space.get()) == 1 &&
                  H5Sget_simple_extent_npoints(space.get()) == m.packed_bytes &&
                  H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1;
  h5::take_error_stack();
  if (!ok)
    return "dataset " + name + " is not " + std::to_string(m.packed_bytes) +
           " bytes of u8, as the manifest says";
  return {};
}

}  // namespace cairn::detail
