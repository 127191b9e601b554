// SPDX-License-Identifier: Apache-2.0
#pragma once
// Move-only ownership of HDF5 identifiers. The destructor never throws; close() reports failure,
// and is what collective closes (datasets, files) must use on the success path.
#include <hdf5.h>

#include <utility>

namespace cairn::h5 {

using CloseFn = herr_t (*)(hid_t);

template <CloseFn Close>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) noexcept : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  /// Closes now; returns the HDF5 status so that callers can turn a failure into an error.
  herr_t close() noexcept {
    if (id_ < 0) return 0;
    herr_t rc = Close(std::exchange(id_, H5I_INVALID_HID));
    return rc;
  }
  void reset() noexcept { (void)close(); }
  /// Gives the identifier up without closing it; the caller owns it now.
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using PropList = Handle<H5Pclose>;
using Attribute = Handle<H5Aclose>;
using Group = Handle<H5Gclose>;

}  // namespace cairn::h5
