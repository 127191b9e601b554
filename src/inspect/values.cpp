#include "inspect/values.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "storage/tensor_read.hpp"

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

bool is_floating(DType d) noexcept {
  return d == DType::kF16 || d == DType::kBF16 || d == DType::kF32 || d == DType::kF64;
}

bool is_integer(DType d) noexcept {
  return !is_floating(d) && d != DType::kBool;
}

float half_to_float(uint16_t bits) noexcept {
  const uint32_t sign = (bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t out;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000u | (mantissa << 13);  // inf or nan
  } else if (exponent != 0) {
    out = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    out = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    out = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

float bfloat16_to_float(uint16_t bits) noexcept {
  const uint32_t out = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

double to_double(DType d, const std::byte* p) noexcept {
  switch (d) {
    case DType::kF16:
      return half_to_float(load<uint16_t>(p));
    case DType::kBF16:
      return bfloat16_to_float(load<uint16_t>(p));
    case DType::kF32:
      return load<float>(p);
    case DType::kF64:
      return load<double>(p);
    case DType::kI8:
      return load<int8_t>(p);
    case DType::kI16:
      return load<int16_t>(p);
    case DType::kI32:
      return load<int32_t>(p);
    case DType::kI64:
      return static_cast<double>(load<int64_t>(p));
    case DType::kU8:
      return load<uint8_t>(p);
    case DType::kU16:
      return load<uint16_t>(p);
    case DType::kU32:
      return load<uint32_t>(p);
    case DType::kU64:
      return static_cast<double>(load<uint64_t>(p));
    case DType::kBool:
      return load<uint8_t>(p) != 0 ? 1.0 : 0.0;
  }
  return 0;
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
  switch (d) {
    case DType::kF16:
      return shortest(half_to_float(load<uint16_t>(p)));
    case DType::kBF16:
      return shortest(bfloat16_to_float(load<uint16_t>(p)));
    case DType::kF32:
      return shortest(load<float>(p));
    case DType::kF64:
      return shortest(load<double>(p));
    case DType::kI8:
      return std::to_string(load<int8_t>(p));
    case DType::kI16:
      return std::to_string(load<int16_t>(p));
    case DType::kI32:
      return std::to_string(load<int32_t>(p));
    case DType::kI64:
      return std::to_string(load<int64_t>(p));
    case DType::kU8:
      return std::to_string(load<uint8_t>(p));
    case DType::kU16:
      return std::to_string(load<uint16_t>(p));
    case DType::kU32:
      return std::to_string(load<uint32_t>(p));
    case DType::kU64:
      return std::to_string(load<uint64_t>(p));
    case DType::kBool: {
      const auto v = load<uint8_t>(p);
      return v == 0 ? "false" : v == 1 ? "true" : "true(" + std::to_string(v) + ")";
    }
  }
  return "?";
}

}  // namespace cairn::inspect::detail
