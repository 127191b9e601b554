// SPDX-License-Identifier: Apache-2.0
#include "inspect/values.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "storage/tensor_read.hpp"
#include "tensor/dtype_traits.hpp"

namespace cairn::inspect::detail {
namespace {

template <class T>
T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
std::string shortest(T value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

}  // namespace

void for_each_chunk(cairn::detail::ContainerReader& reader, const TensorRecord& t,
                    const Box& region, int64_t chunk_bytes,
                    const std::function<bool(const Box&, const std::byte*)>& fn) {
  const auto esize = static_cast<int64_t>(dtype_size(t.dtype));
  std::vector<std::byte> buffer;
  for (const Box& chunk : split_box(region, esize, chunk_bytes)) {
    buffer.assign(static_cast<std::size_t>(chunk.volume() * esize), std::byte{0});
    cairn::detail::PackedReadBatch packed;
    cairn::detail::read_tensor(reader, t, {chunk}, {buffer.data()}, packed);
    packed.run(reader, chunk_bytes);
    if (!fn(chunk, buffer.data())) return;
  }
}

using cairn::detail::DTypeKind;
using cairn::detail::visit_dtype;

bool is_floating(DType d) noexcept {
  return cairn::detail::known_dtype(d) &&
         visit_dtype(d, [](auto row) { return row.kind == DTypeKind::kFloat; });
}

bool is_integer(DType d) noexcept {
  return cairn::detail::known_dtype(d) && visit_dtype(d, [](auto row) {
           return row.kind == DTypeKind::kSigned || row.kind == DTypeKind::kUnsigned;
         });
}

float half_to_float(uint16_t bits) noexcept {
  return cairn::detail::half_to_float(bits);
}

float bfloat16_to_float(uint16_t bits) noexcept {
  return cairn::detail::bfloat16_to_float(bits);
}

double to_double(DType d, const std::byte* p) noexcept {
  if (!cairn::detail::known_dtype(d)) return 0;
  return visit_dtype(d, [p](auto row) {
    return static_cast<double>(row.value(load<typename decltype(row)::Storage>(p)));
  });
}

double abs_difference(DType d, const std::byte* a, const std::byte* b) noexcept {
  if (d == DType::kI64) {
    const int64_t x = load<int64_t>(a), y = load<int64_t>(b);
    // The distance fits in uint64 even when x - y overflows int64.
    const uint64_t dist = x >= y ? static_cast<uint64_t>(x) - static_cast<uint64_t>(y)
                                 : static_cast<uint64_t>(y) - static_cast<uint64_t>(x);
    return static_cast<double>(dist);
  }
  if (d == DType::kU64) {
    const uint64_t x = load<uint64_t>(a), y = load<uint64_t>(b);
    return static_cast<double>(x >= y ? x - y : y - x);
  }
  return std::fabs(to_double(d, a) - to_double(d, b));
}

std::string format_element(DType d, const std::byte* p) {
  return visit_dtype(d, [p](auto row) -> std::string {
    using Row = decltype(row);
    const auto stored = load<typename Row::Storage>(p);
    if constexpr (Row::kind == DTypeKind::kFloat) {
      return shortest(row.value(stored));  // 16-bit floats print as the float they are
    } else if constexpr (Row::kind == DTypeKind::kBool) {
      // A byte other than 0 or 1 is shown as it is: it reads as true, but is not canonical.
      return stored == 0 ? "false" : stored == 1 ? "true" : "true(" + std::to_string(stored) + ")";
    } else {
      return std::to_string(row.value(stored));
    }
  });
}

}  // namespace cairn::inspect::detail
