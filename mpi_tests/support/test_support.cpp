// SPDX-License-Identifier: Apache-2.0
#include "support/test_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace cairn::testing {
namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Writes the test value of element (id, index) in `dtype`'s representation to `out`.
void encode(DType dtype, int64_t id, int64_t index, std::byte* out) {
  const uint64_t bits = mix(static_cast<uint64_t>(id) * 1000003u + static_cast<uint64_t>(index));
  switch (dtype) {
    case DType::kF32: {
      float f = static_cast<float>(test_value(id, index));
      std::memcpy(out, &f, 4);
      return;
    }
    case DType::kF64: {
      double d = test_value(id, index);
      std::memcpy(out, &d, 8);
      return;
    }
    case DType::kF16:
    case DType::kBF16: {
      uint16_t h = static_cast<uint16_t>(bits & 0x3bff);  // finite, normal-range bit patterns
      std::memcpy(out, &h, 2);
      return;
    }
    case DType::kBool: {
      uint8_t b = static_cast<uint8_t>(bits & 1u);
      std::memcpy(out, &b, 1);
      return;
    }
    default:
      std::memcpy(out, &bits, dtype_size(dtype));  // little-endian low bytes
  }
}

template <class Fn>
void for_each_local_element(const Variable& v, Fn&& fn) {
  const int64_t esize = static_cast<int64_t>(dtype_size(v.dtype()));
  for (std::size_t b = 0; b < v.local_boxes().size(); ++b) {
    const Box& box = v.local_boxes()[b];
    const int64_t n = box.volume();
    Shape coord(box.rank(), 0);
    for (int64_t i = 0; i < n; ++i) {
      // Decompose the in-box linear index into a global coordinate.
      int64_t rem = i;
      for (int d = static_cast<int>(box.rank()) - 1; d >= 0; --d) {
        coord[d] = box.offset[d] + rem % box.count[d];
        rem /= box.count[d];
      }
      fn(b, i * esize, linear_index(v.shape(), coord));
    }
  }
}

}  // namespace

Session& session() {
  static Session s(MPI_COMM_WORLD);
  return s;
}

int64_t global_mismatches(const Variable& v, int64_t id) {
  return session().comm().allreduce_sum(count_mismatches(v, id));
}

std::string scratch_dir() {
  static int counter = 0;
  const char* base = std::getenv("CAIRN_TEST_DIR");
  std::string root = base ? base : "/tmp/cairn_test";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "adhoc";
  std::string dir = root + "/" + name + "." + std::to_string(counter++);
  if (world_rank() == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}

double test_value(int64_t id, int64_t index) {
  // Exactly representable in float: small integers plus a binary fraction.
  return static_cast<double>((id * 7919 + index) % 65536) + 0.25 * static_cast<double>(id % 4);
}

int64_t linear_index(const Shape& shape, const Shape& coord) {
  int64_t idx = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) idx = idx * shape[d] + coord[d];
  return idx;
}

void fill(Variable& v, int64_t id) {
  for_each_local_element(v, [&](std::size_t b, int64_t byte_off, int64_t gidx) {
    encode(v.dtype(), id, gidx, v.box_bytes(b).data() + byte_off);
  });
}

void zero(Variable& v) {
  // std::fill, not memset: a rank that owns nothing has an empty span whose data() may be null,
  // and memset(nullptr, 0, 0) is undefined behaviour (UBSan reports it at 3+ ranks).
  std::ranges::fill(v.bytes(), std::byte{0});
}

int64_t count_mismatches(const Variable& v, int64_t id) {
  int64_t bad = 0;
  std::byte expect[8];
  const std::size_t esize = dtype_size(v.dtype());
  for_each_local_element(v, [&](std::size_t b, int64_t byte_off, int64_t gidx) {
    encode(v.dtype(), id, gidx, expect);
    if (std::memcmp(expect, v.box_bytes(b).data() + byte_off, esize) != 0) ++bad;
  });
  return bad;
}

void expect_same_error_everywhere(const std::function<void()>& fn, ErrorCode code,
                                  const std::vector<std::string>& needles) {
  std::string text;
  ErrorCode got{};
  try {
    fn();
  } catch (const Error& e) {
    text = e.what();
    got = e.code();
  }
  EXPECT_FALSE(text.empty()) << "no error on rank " << session().rank();
  if (!text.empty()) {
    EXPECT_EQ(got, code) << text;
    for (const auto& n : needles)
      EXPECT_NE(text.find(n), std::string::npos) << text << " lacks " << n;
  }
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
}

ScopedEnv::ScopedEnv(const char* name, const std::string& value) : name_(name) {
  ::setenv(name, value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  ::unsetenv(name_);
}

void expect_one_ranks_fault_everywhere(const std::string& phase, int failing, const char* what,
                                       const std::function<void()>& step) {
  const ScopedEnv fault("CAIRN_FAULT_THROW", phase + ":" + std::to_string(failing));
  try {
    step();
    ADD_FAILURE() << "expected the " << what << " to fail";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("a foreign exception at '" + phase + "'"), std::string::npos)
        << e.what();
    EXPECT_EQ(e.context().rank, failing);
    EXPECT_EQ(e.failed_ranks(), 1);
  }
}

}  // namespace cairn::testing
