// SPDX-License-Identifier: Apache-2.0
#pragma once
// A live state object's scope as the manifest records it: storage knows the manifest's
// SavedScope, not the state layer's StateScope.
#include "cairn/state/state.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

inline SavedScope saved_scope(StateScope scope) noexcept {
  return scope == StateScope::kPerRank ? SavedScope::kPerRank : SavedScope::kGlobal;
}

}  // namespace cairn::detail
