// SPDX-License-Identifier: Apache-2.0
#pragma once
// The example's deterministic pseudo-random numbers: initial weights and synthetic data are pure
// functions of (seed, index), so a restarted job can check that it resumed on the same values.
#include <cstdint>

namespace train {

/// SplitMix64's finalizer: a well-mixed 64-bit value from any 64-bit input.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace train
