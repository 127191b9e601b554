// SPDX-License-Identifier: Apache-2.0
// The one table of element types (src/tensor/dtype_traits.hpp): every dtype's name, size, kind
// and HDF5 type come from its row, and the HDF5 type made for a dtype is recognized as that dtype
// and as no other (what `cairn verify` relies on).
#include <gtest/gtest.h>

#include <string>

#include "cairn/tensor/dtype.hpp"
#include "storage/h5_types.hpp"
#include "tensor/dtype_traits.hpp"

namespace cairn {
namespace {

using detail::DTypeKind;
using detail::kAllDTypes;
using detail::visit_dtype;

TEST(DTypeTable, EveryRowIsConsistent) {
  for (const DType d : kAllDTypes) {
    visit_dtype(d, [&](auto row) {
      using Row = decltype(row);
      EXPECT_EQ(Row::dtype, d);
      EXPECT_EQ(dtype_name(d), Row::name);
      EXPECT_EQ(dtype_size(d), sizeof(typename Row::Storage));
      EXPECT_EQ(dtype_from_name(Row::name), d);
    });
  }
  EXPECT_EQ(dtype_size(static_cast<DType>(kAllDTypes.size())), 0u);
  EXPECT_EQ(dtype_name(static_cast<DType>(kAllDTypes.size())), "invalid");
  EXPECT_THROW(visit_dtype(static_cast<DType>(200), [](auto) { return 0; }), Error);
}

TEST(DTypeTable, SixteenBitFloatsReadAsTheirValues) {
  EXPECT_EQ(detail::DTypeTraits<DType::kF16>::value(0x3C00), 1.0f);      // 1.0
  EXPECT_EQ(detail::DTypeTraits<DType::kF16>::value(0xC000), -2.0f);     // -2.0
  EXPECT_EQ(detail::DTypeTraits<DType::kF16>::value(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(detail::DTypeTraits<DType::kBF16>::value(0x3F80), 1.0f);
  EXPECT_EQ(detail::DTypeTraits<DType::kBool>::value(2), true);
}

TEST(DTypeTable, EachHdf5TypeIsRecognizedAsItsDTypeOnly) {
  for (const DType made : kAllDTypes) {
    const h5::Datatype type = h5::make_type(made);
    EXPECT_EQ(H5Tget_size(type.get()), dtype_size(made)) << dtype_name(made);
    for (const DType other : kAllDTypes)
      EXPECT_EQ(h5::type_matches(type.get(), other), other == made)
          << "made " << dtype_name(made) << ", checked as " << dtype_name(other);
  }
  // A big-endian integer is not what cairn writes.
  h5::Datatype big(H5Tcopy(H5T_STD_I32BE));
  EXPECT_FALSE(h5::type_matches(big.get(), DType::kI32));
}

}  // namespace
}  // namespace cairn
