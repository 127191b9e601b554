// SPDX-License-Identifier: Apache-2.0
#include "synthetic_data.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "mix.hpp"

namespace train {
namespace {

float unit(uint64_t h) {
  return static_cast<float>(static_cast<double>(h >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

std::string rng_text(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

}  // namespace

float Dataset::input(int64_t i, int j) const {
  return unit(
      mix(seed * 0x100000001b3ull + static_cast<uint64_t>(i) * kInputs + static_cast<uint64_t>(j)));
}

float Dataset::target(int64_t i) const {
  double s = 0;
  for (int j = 0; j < kInputs; ++j)
    s += unit(mix(seed + 77 + static_cast<uint64_t>(j))) * input(i, j);
  return static_cast<float>(std::sin(2.0 * s) + 0.3 * std::cos(input(i, 0) * 3.0));
}

Loader::Loader(const Dataset& data, int rank, int nranks)
    : cairn::State<LoaderPosition>(cairn::StateScope::kPerRank),
      data_(&data),
      rank_(rank),
      nranks_(nranks) {
  rng_.seed(mix(data.seed * 1000003u + static_cast<uint64_t>(rank)));
  start_epoch(0);
}

// The saved RNG state is the one an epoch's shuffle starts from, so a restore can replay the
// shuffle and continue with exactly the same stream.
void Loader::shuffle_shard() {
  order_.clear();
  for (int64_t i = rank_; i < data_->samples; i += nranks_) order_.push_back(i);
  std::shuffle(order_.begin(), order_.end(), rng_);
}

void Loader::start_epoch(int64_t epoch) {
  value().epoch = epoch;
  value().position = 0;
  value().rng = rng_text(rng_);
  shuffle_shard();
}

std::vector<int64_t> Loader::next(int count) {
  std::vector<int64_t> out;
  out.reserve(static_cast<std::size_t>(count));
  while (static_cast<int>(out.size()) < count) {
    if (value().position >= static_cast<int64_t>(order_.size())) start_epoch(value().epoch + 1);
    out.push_back(order_[static_cast<std::size_t>(value().position++)]);
  }
  return out;
}

void Loader::load_bytes(std::string_view bytes) {
  cairn::State<LoaderPosition>::load_bytes(bytes);
  std::istringstream in(value().rng);
  in >> rng_;
  shuffle_shard();
}

bool Loader::load_rescaled(const std::vector<std::string>& saved, int rank) {
  if (saved.empty()) return false;
  double fraction = 0;
  int64_t epoch = 0;
  const double old_shard = static_cast<double>(data_->samples) / static_cast<double>(saved.size());
  for (const std::string& bytes : saved) {
    cairn::State<LoaderPosition>::load_bytes(bytes);
    epoch = std::max(epoch, value().epoch);
    fraction = std::max(fraction, static_cast<double>(value().position) / old_shard);
  }
  rng_.seed(mix(data_->seed * 1000003u + static_cast<uint64_t>(rank) * 7919u +
                static_cast<uint64_t>(nranks_) * 104729u + static_cast<uint64_t>(epoch)));
  start_epoch(epoch);
  value().position = std::min(static_cast<int64_t>(order_.size()),
                              static_cast<int64_t>(fraction * static_cast<double>(order_.size())));
  return true;
}

}  // namespace train
