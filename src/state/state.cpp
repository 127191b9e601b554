#include "cairn/state/state.hpp"

namespace cairn {

bool StateObject::load_rescaled(const std::vector<std::string>& saved, int rank) {
  if (rank < 0 || static_cast<std::size_t>(rank) >= saved.size()) return false;
  load_bytes(saved[static_cast<std::size_t>(rank)]);
  return true;
}

}  // namespace cairn
