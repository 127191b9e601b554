// SPDX-License-Identifier: Apache-2.0
#include "cairn/state/state.hpp"

namespace cairn {

bool StateObject::load_rescaled(const std::vector<std::string>& saved, int rank) {
  rescaled_by_default_ = true;
  if (rank < 0 || static_cast<std::size_t>(rank) >= saved.size()) return false;
  load_bytes(saved[static_cast<std::size_t>(rank)]);
  return true;
}

StateObject::Rescaled StateObject::rescale_from(const std::vector<std::string>& saved, int rank) {
  rescaled_by_default_ = false;
  const bool loaded = load_rescaled(saved, rank);
  return {loaded, rescaled_by_default_};
}

}  // namespace cairn
