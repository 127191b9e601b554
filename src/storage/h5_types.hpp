// SPDX-License-Identifier: Apache-2.0
#pragma once
// HDF5 datatypes for cairn dtypes. Memory and file types are the same little-endian type so that
// parallel HDF5 never silently falls back to independent I/O for a conversion.
#include "cairn/tensor/dtype.hpp"
#include "storage/h5_handle.hpp"

namespace cairn::h5 {

/// A new datatype handle for `dtype`: IEEE floats (f16 and bf16 as custom 16-bit floats that h5py
/// reads as float16 / a 2-byte float), little-endian integers, and bool as h5py's int8 enum.
Datatype make_type(DType dtype);
/// Whether HDF5 type `type` is what make_type(dtype) makes, as far as a reader cares: class,
/// size, sign, byte order, and the exponent bias of 16-bit floats.
bool type_matches(hid_t type, DType dtype);
/// 1-D unsigned bytes, for packed data and the manifest.
Datatype make_byte_type();

}  // namespace cairn::h5
