// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reading tensor values for people: streaming a region in bounded chunks, converting elements to
// numbers and text.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "storage/container_reader.hpp"

namespace cairn::inspect::detail {

/// Local. Calls `fn(chunk, data)` for consecutive sub-boxes of `region` of tensor `t` whose
/// concatenation is `region` in row-major order; `data` holds the chunk's elements row-major and
/// is valid during the call. Each chunk is at most `chunk_bytes` (but at least one element). Every
/// piece read is checked against its checksum. Stops early when `fn` returns false.
void for_each_chunk(cairn::detail::ContainerReader& reader, const TensorRecord& t,
                    const Box& region, int64_t chunk_bytes,
                    const std::function<bool(const Box&, const std::byte*)>& fn);

/// Whether the dtype holds floating-point values (f16, bf16, f32, f64).
bool is_floating(DType dtype) noexcept;
/// Whether the dtype holds integers (i*, u*; not bool).
bool is_integer(DType dtype) noexcept;
/// The element at `p` as a double (integers above 2^53 round).
double to_double(DType dtype, const std::byte* p) noexcept;
/// |a - b| for two elements of `dtype`, exact for integers up to 2^53 and without overflow.
double abs_difference(DType dtype, const std::byte* a, const std::byte* b) noexcept;
/// The element as text: integers exactly, floats in the shortest form that reads back to the same
/// value of their type (f16 and bf16 through float), bools as true/false.
std::string format_element(DType dtype, const std::byte* p);
/// IEEE binary16 and bfloat16 bits to float.
float half_to_float(uint16_t bits) noexcept;
float bfloat16_to_float(uint16_t bits) noexcept;

}  // namespace cairn::inspect::detail
