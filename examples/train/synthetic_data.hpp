// SPDX-License-Identifier: Apache-2.0
#pragma once
// A deterministic synthetic regression data set and a distributed loader over it. Each rank reads
// its own shard (samples r, r+n, r+2n, ...) in an order it reshuffles every epoch with its own RNG,
// the way a DistributedSampler does; the loader's position and RNG are per-rank checkpoint state.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cairn/state/boost_state.hpp"

namespace train {

inline constexpr int kInputs = 16;

struct Dataset {
  int64_t samples = 6144;
  uint64_t seed = 1;
  /// Input j of sample i, in [-1, 1).
  float input(int64_t i, int j) const;
  float target(int64_t i) const;
};

struct LoaderPosition {
  int64_t epoch = 0;
  int64_t position = 0;  // index into this rank's shuffled shard
  std::string rng;       // std::mt19937_64 state the epoch's shuffle started from
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    // clang-format off
    ar & epoch & position & rng;
    // clang-format on
  }
};

/// Per-rank loader state. When the job size changes, every new rank starts its own shard of the
/// same epoch at the same fraction of the way through it that the saving job had reached, with a
/// fresh shuffle derived from (seed, epoch, rank, new size): the documented elastic rule.
class Loader : public cairn::State<LoaderPosition> {
 public:
  Loader(const Dataset& data, int rank, int nranks);
  /// Local. The next `count` sample indices of this rank's shard, reshuffling at epoch ends.
  std::vector<int64_t> next(int count);
  bool load_rescaled(const std::vector<std::string>& saved, int rank) override;
  void load_bytes(std::string_view bytes) override;

 private:
  void start_epoch(int64_t epoch);
  void shuffle_shard();
  const Dataset* data_;
  int rank_;
  int nranks_;
  std::mt19937_64 rng_;
  std::vector<int64_t> order_;
};

}  // namespace train
