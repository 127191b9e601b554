// SPDX-License-Identifier: Apache-2.0
#pragma once
// The object graph of the golden checkpoints in tests/golden/format-*/: what make_golden saves on
// 2 ranks, and what mpi_tests/tools/golden_test.cpp rebuilds on any number of ranks to restore
// them. Every value is a function of (tensor id, global element index, step), exactly
// representable in every dtype used; expected.json holds the same values written out, so the test
// does not depend on this file staying the same.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"

namespace cairn::golden {

/// How a tensor is sharded: at save (2 ranks) `saved`, at restore `restored` (any rank count).
enum class Sharding { kReplicated, kBlock0, kBlock1, kGrid, kExplicit };

struct TensorSpec {
  std::string path;  // edge names from the root, '/'-separated (no escaping needed)
  int id;
  DType dtype;
  Shape shape;
  Sharding sharding;
};

/// Every variable of the model, in the order they are tracked.
inline const std::vector<TensorSpec>& tensor_specs() {
  static const std::vector<TensorSpec> specs = {
      {"model/embedding", 1, DType::kF32, {6, 4}, Sharding::kBlock0},    // dataset
      {"model/dense/kernel", 2, DType::kF64, {4, 3}, Sharding::kGrid},   // dataset
      {"model/dense/bias", 3, DType::kF32, {3}, Sharding::kReplicated},  // packed
      {"model/half", 4, DType::kF16, {4, 10}, Sharding::kBlock1},        // dataset
      {"model/brain", 5, DType::kBF16, {40}, Sharding::kReplicated},     // replicated dataset
      {"model/counts", 6, DType::kI64, {5}, Sharding::kBlock0},          // packed
      {"model/mask", 7, DType::kBool, {70}, Sharding::kBlock0},          // dataset
      {"model/codes", 8, DType::kU8, {10}, Sharding::kExplicit},         // packed
      {"model/ints8", 9, DType::kI8, {9}, Sharding::kBlock0},            // packed
      {"model/ints16", 10, DType::kI16, {3, 3}, Sharding::kGrid},        // packed
      {"model/ints32", 11, DType::kI32, {4, 5}, Sharding::kBlock0},      // dataset
      {"model/u16", 12, DType::kU16, {6}, Sharding::kReplicated},        // packed
      {"model/u32", 13, DType::kU32, {2, 3}, Sharding::kBlock1},         // packed
      {"model/u64", 14, DType::kU64, {4}, Sharding::kBlock0},            // packed
      {"model/scalar", 15, DType::kF32, {}, Sharding::kReplicated},      // packed scalar
      {"model/empty", 16, DType::kF32, {0, 3}, Sharding::kBlock0},       // no elements
      {"model/table", 17, DType::kF64, {16}, Sharding::kReplicated},     // replicated dataset
  };
  return specs;
}

/// Adam slots "m" (id 100 + variable id) and "v" (200 + id) exist for these variables.
inline const std::vector<std::string>& slotted_paths() {
  static const std::vector<std::string> paths = {"model/embedding", "model/dense/kernel",
                                                 "model/dense/bias"};
  return paths;
}

inline Layout make_layout(Sharding s, int nranks, bool saving) {
  switch (s) {
    case Sharding::kReplicated:
      return Layout::replicated();
    case Sharding::kBlock0:
      return Layout::block(0);
    case Sharding::kBlock1:
      return Layout::block(1);
    case Sharding::kGrid:
      return Layout::grid({nranks, 1});
    case Sharding::kExplicit:
      if (saving && nranks == 2)  // uneven on purpose: rank 0 has 3 elements, rank 1 has 7
        return Layout::explicit_boxes({{Box{{0}, {3}}}, {Box{{3}, {7}}}});
      return Layout::block(0);
  }
  return Layout::replicated();
}

/// An integer in [-20, 20] from which every dtype's value is derived.
inline int64_t base(int id, int64_t index, int step) {
  return (index * 7 + id * 3 + step * 5) % 41 - 20;
}

/// The value of element `index` of tensor `id` at `step`, as a double (exact for every dtype but
/// u64 and i64, whose values are given by element_integer()).
inline double element_double(DType dtype, int id, int64_t index, int step) {
  const int64_t k = base(id, index, step);
  switch (dtype) {
    case DType::kF16:
    case DType::kBF16:
    case DType::kF32:
    case DType::kF64:
      return static_cast<double>(k) * 0.125;
    case DType::kBool:
      return (k + 20) % 3 == 0 ? 1 : 0;
    case DType::kU8:
    case DType::kU16:
    case DType::kU32:
      return static_cast<double>(k + 20) * (dtype == DType::kU32 ? 100000 : 1);
    default:
      return static_cast<double>(k);
  }
}

/// Exact values of the 64-bit integer dtypes (beyond 2^53 on purpose).
inline int64_t element_i64(int id, int64_t index, int step) {
  return base(id, index, step) * int64_t{1000000000000000};
}
inline uint64_t element_u64(int id, int64_t index, int step) {
  return uint64_t{0xFFFFFFFF00000000} + static_cast<uint64_t>(base(id, index, step) + 20);
}

inline uint16_t float_to_half_bits(float f) {  // exact for the normal values used here
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7fffffffu) == 0) return static_cast<uint16_t>(b >> 16);
  const uint32_t exponent = ((b >> 23) & 0xff) - 112;
  return static_cast<uint16_t>(((b >> 16) & 0x8000u) | (exponent << 10) | ((b & 0x7fffffu) >> 13));
}

/// Writes element `index` of tensor `id` at `step` in the dtype's little-endian bytes.
inline void encode_element(DType dtype, int id, int64_t index, int step, std::byte* out) {
  const double v = element_double(dtype, id, index, step);
  auto put = [out](auto x) { std::memcpy(out, &x, sizeof x); };
  switch (dtype) {
    case DType::kF16:
      put(float_to_half_bits(static_cast<float>(v)));
      break;
    case DType::kBF16: {
      const float f = static_cast<float>(v);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      put(static_cast<uint16_t>(b >> 16));
      break;
    }
    case DType::kF32:
      put(static_cast<float>(v));
      break;
    case DType::kF64:
      put(v);
      break;
    case DType::kI8:
      put(static_cast<int8_t>(v));
      break;
    case DType::kI16:
      put(static_cast<int16_t>(v));
      break;
    case DType::kI32:
      put(static_cast<int32_t>(v));
      break;
    case DType::kI64:
      put(element_i64(id, index, step));
      break;
    case DType::kU8:
      put(static_cast<uint8_t>(v));
      break;
    case DType::kU16:
      put(static_cast<uint16_t>(v));
      break;
    case DType::kU32:
      put(static_cast<uint32_t>(v));
      break;
    case DType::kU64:
      put(element_u64(id, index, step));
      break;
    case DType::kBool:
      put(static_cast<uint8_t>(v));
      break;
  }
}

/// Calls fn(local byte offset, global row-major index) for every element this rank holds.
template <class Fn>
void for_each_local(const Variable& v, Fn&& fn) {
  const auto esize = static_cast<int64_t>(dtype_size(v.dtype()));
  int64_t local = 0;
  for (const Box& box : v.local_boxes()) {
    for (int64_t i = 0; i < box.volume(); ++i, ++local) {
      int64_t rem = i, global = 0, stride = 1;
      for (std::size_t d = box.rank(); d-- > 0;) {
        global += (box.offset[d] + rem % box.count[d]) * stride;
        rem /= box.count[d];
        stride *= v.shape()[d];
      }
      fn(local * esize, global);
    }
  }
}

/// Per-rank opaque state: a data loader's position.
struct LoaderPosition {
  int64_t position = 0;
  std::string shard;
  std::vector<int32_t> order;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& position& shard& order;
  }
  friend bool operator==(const LoaderPosition&, const LoaderPosition&) = default;
};

inline LoaderPosition loader_value(int rank, int step) {
  return {1000 * step + 10 * rank, "shard-" + std::to_string(rank), {rank, step, -7}};
}

/// On a different number of ranks, rank r takes the value saved by rank r mod (saving ranks).
class LoaderState : public State<LoaderPosition> {
 public:
  LoaderState() : State<LoaderPosition>(StateScope::kPerRank) {}
  bool load_rescaled(const std::vector<std::string>& saved, int rank) override {
    load_bytes(saved[static_cast<std::size_t>(rank) % saved.size()]);
    return true;
  }
};

/// Global opaque state: a random generator's seed and draw count.
struct RngState {
  uint64_t seed = 0;
  int64_t draws = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& seed& draws;
  }
  friend bool operator==(const RngState&, const RngState&) = default;
};

inline RngState rng_value(int step) {
  return {0x5eedULL, 64 * step};
}

struct Model {
  std::shared_ptr<Module> model = std::make_shared<Module>();
  std::shared_ptr<Adam> optimizer;
  std::map<std::string, std::shared_ptr<Variable>> variables;  // by spec path
  std::shared_ptr<LoaderState> data = std::make_shared<LoaderState>();
  std::shared_ptr<State<RngState>> rng = std::make_shared<State<RngState>>(StateScope::kGlobal);

  /// Local. The graph, with layouts for saving on 2 ranks (`saving`) or for any rank count.
  Model(const Session& s, bool saving) : optimizer(std::make_shared<Adam>(s, Adam::Options{})) {
    std::map<std::string, std::shared_ptr<Module>> modules{{"model", model}};
    for (const TensorSpec& spec : tensor_specs()) {
      const std::string parent_path = spec.path.substr(0, spec.path.rfind('/'));
      std::shared_ptr<Module>& parent = modules[parent_path];
      if (!parent) {  // one level of nesting below "model" is all the specs use
        parent = std::make_shared<Module>();
        model->track(parent_path.substr(parent_path.rfind('/') + 1), parent);
      }
      auto v = std::make_shared<Variable>(s, spec.dtype, spec.shape,
                                          make_layout(spec.sharding, s.size(), saving));
      parent->track(spec.path.substr(spec.path.rfind('/') + 1), v);
      variables[spec.path] = v;
    }
    model->track("tied", variables.at("model/embedding"));  // a shared object: saved once
    modules.at("model/dense")->track_weak("owner", model);  // a cycle back to "model"
    for (const std::string& path : slotted_paths()) {
      optimizer->add_slot(variables.at(path), "m");
      optimizer->add_slot(variables.at(path), "v");
    }
  }

  Checkpoint::Children children() const {
    return {{"model", model}, {"optimizer", optimizer}, {"data", data}, {"rng", rng}};
  }
};

}  // namespace cairn::golden
