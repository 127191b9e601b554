// SPDX-License-Identifier: Apache-2.0
#include "storage/h5_types.hpp"

#include "storage/h5_error.hpp"
#include "tensor/dtype_traits.hpp"

namespace cairn::h5 {
namespace {

using cairn::detail::DTypeKind;

// A little-endian IEEE-style float of the row's size and fields. f32 and f64 are HDF5's own
// predefined types; 16-bit floats are built from f32 (h5py reads them as float16 / a 2-byte float).
template <class Row>
Datatype float_type(const ErrorContext& ctx) {
  if constexpr (Row::size == 4)
    return Datatype(check_id(H5Tcopy(H5T_IEEE_F32LE), "H5Tcopy", ctx));
  else if constexpr (Row::size == 8)
    return Datatype(check_id(H5Tcopy(H5T_IEEE_F64LE), "H5Tcopy", ctx));
  else {
    static_assert(Row::size == 2, "a float dtype needs its HDF5 type here");
    Datatype t(check_id(H5Tcopy(H5T_IEEE_F32LE), "H5Tcopy", ctx));
    check_status(
        H5Tset_fields(t.get(), 15, Row::mantissa_bits, Row::exponent_bits, 0, Row::mantissa_bits),
        "H5Tset_fields", ctx);
    check_status(H5Tset_size(t.get(), 2), "H5Tset_size", ctx);
    check_status(H5Tset_ebias(t.get(), Row::exponent_bias), "H5Tset_ebias", ctx);
    return t;
  }
}

template <std::size_t Size, bool Signed>
hid_t integer_type() {
  static_assert(Size == 1 || Size == 2 || Size == 4 || Size == 8,
                "an integer dtype needs its HDF5 type");
  if constexpr (Size == 1)
    return Signed ? H5T_STD_I8LE : H5T_STD_U8LE;
  else if constexpr (Size == 2)
    return Signed ? H5T_STD_I16LE : H5T_STD_U16LE;
  else if constexpr (Size == 4)
    return Signed ? H5T_STD_I32LE : H5T_STD_U32LE;
  else
    return Signed ? H5T_STD_I64LE : H5T_STD_U64LE;
}

}  // namespace

Datatype make_type(DType dtype) {
  const ErrorContext ctx{.operation = "create datatype"};
  return cairn::detail::visit_dtype(dtype, [&](auto row) -> Datatype {
    using Row = decltype(row);
    if constexpr (Row::kind == DTypeKind::kFloat) {
      return float_type<Row>(ctx);
    } else if constexpr (Row::kind == DTypeKind::kBool) {
      // h5py's bool: an int8 enum.
      Datatype t(check_id(H5Tenum_create(H5T_STD_I8LE), "H5Tenum_create", ctx));
      int8_t no = 0, yes = 1;
      check_status(H5Tenum_insert(t.get(), "FALSE", &no), "H5Tenum_insert", ctx);
      check_status(H5Tenum_insert(t.get(), "TRUE", &yes), "H5Tenum_insert", ctx);
      return t;
    } else {
      return Datatype(check_id(H5Tcopy(integer_type<Row::size, Row::kind == DTypeKind::kSigned>()),
                               "H5Tcopy", ctx));
    }
  });
}

bool type_matches(hid_t type, DType dtype) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (size != dtype_size(dtype)) return false;
  const bool ok = cairn::detail::visit_dtype(dtype, [&](auto row) {
    using Row = decltype(row);
    if constexpr (Row::kind == DTypeKind::kFloat)
      return cls == H5T_FLOAT && (Row::size != 2 || H5Tget_ebias(type) == Row::exponent_bias);
    else if constexpr (Row::kind == DTypeKind::kBool)
      return cls == H5T_ENUM;
    else
      return cls == H5T_INTEGER &&
             H5Tget_sign(type) == (Row::kind == DTypeKind::kSigned ? H5T_SGN_2 : H5T_SGN_NONE);
  });
  return ok && (size == 1 || cls == H5T_ENUM || H5Tget_order(type) == H5T_ORDER_LE);
}

Datatype make_byte_type() {
  return Datatype(check_id(H5Tcopy(H5T_STD_U8LE), "H5Tcopy", {.operation = "create byte type"}));
}

}  // namespace cairn::h5
