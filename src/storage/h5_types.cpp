#include "storage/h5_types.hpp"

#include "storage/h5_error.hpp"

namespace cairn::h5 {
namespace {

hid_t predefined(DType dtype) {
  switch (dtype) {
    case DType::kF32: return H5T_IEEE_F32LE;
    case DType::kF64: return H5T_IEEE_F64LE;
    case DType::kI8: return H5T_STD_I8LE;
    case DType::kI16: return H5T_STD_I16LE;
    case DType::kI32: return H5T_STD_I32LE;
    case DType::kI64: return H5T_STD_I64LE;
    case DType::kU8: return H5T_STD_U8LE;
    case DType::kU16: return H5T_STD_U16LE;
    case DType::kU32: return H5T_STD_U32LE;
    case DType::kU64: return H5T_STD_U64LE;
    default: return H5I_INVALID_HID;
  }
}

Datatype half_float(size_t exponent_bits, size_t mantissa_bits, size_t bias) {
  const ErrorContext ctx{.operation = "create 16-bit float type"};
  Datatype t(check_id(H5Tcopy(H5T_IEEE_F32LE), "H5Tcopy", ctx));
  check_status(H5Tset_fields(t.get(), 15, mantissa_bits, exponent_bits, 0, mantissa_bits),
               "H5Tset_fields", ctx);
  check_status(H5Tset_size(t.get(), 2), "H5Tset_size", ctx);
  check_status(H5Tset_ebias(t.get(), bias), "H5Tset_ebias", ctx);
  return t;
}

}  // namespace

Datatype make_type(DType dtype) {
  const ErrorContext ctx{.operation = "create datatype"};
  switch (dtype) {
    case DType::kF16: return half_float(5, 10, 15);
    case DType::kBF16: return half_float(8, 7, 127);
    case DType::kBool: {
      Datatype t(check_id(H5Tenum_create(H5T_STD_I8LE), "H5Tenum_create", ctx));
      int8_t no = 0, yes = 1;
      check_status(H5Tenum_insert(t.get(), "FALSE", &no), "H5Tenum_insert", ctx);
      check_status(H5Tenum_insert(t.get(), "TRUE", &yes), "H5Tenum_insert", ctx);
      return t;
    }
    default:
      return Datatype(check_id(H5Tcopy(predefined(dtype)), "H5Tcopy", ctx));
  }
}

Datatype make_byte_type() {
  return Datatype(check_id(H5Tcopy(H5T_STD_U8LE), "H5Tcopy", {.operation = "create byte type"}));
}

}  // namespace cairn::h5
