// SPDX-License-Identifier: Apache-2.0
#pragma once
// Opaque state (data-iterator position, RNG, counters) saved as bytes. See boost_state.hpp for the
// adapter that serializes any type with a Boost.Serialization `serialize()` member.
#include <string>
#include <string_view>
#include <vector>

#include "cairn/graph/trackable.hpp"

namespace cairn {

enum class StateScope {
  kPerRank,  // every rank has its own value (e.g. its data-iterator position)
  kGlobal,   // one value for the job, written once (by one rank)
};

class StateObject : public Trackable {
 public:
  explicit StateObject(StateScope scope) : scope_(scope) {}
  const char* kind() const noexcept override { return "state"; }
  StateScope scope() const noexcept { return scope_; }

  /// Local. The value as bytes.
  virtual std::string save_bytes() const = 0;
  /// Local. Replaces the value from bytes produced by save_bytes(); throws cairn::Error on bad
  /// input.
  virtual void load_bytes(std::string_view bytes) = 0;
  /// Local. Restores a per-rank value when the job size changed: `saved[r]` is what rank r of the
  /// saving job wrote. The default keeps rank r's value for r < saved.size() and reports the
  /// object as unmatched on the other ranks (return false). Override it to merge or re-split.
  virtual bool load_rescaled(const std::vector<std::string>& saved, int rank);

  struct Rescaled {
    bool loaded;      // what load_rescaled() returned
    bool by_default;  // the default rule ran: saved values of ranks >= the job size went unused
  };
  /// Local. Calls load_rescaled() and says whether its default rule ran (an override that does not
  /// call the base class takes responsibility for every saved value, e.g. by merging them).
  Rescaled rescale_from(const std::vector<std::string>& saved, int rank);

 private:
  StateScope scope_;
  bool rescaled_by_default_ = false;
};

}  // namespace cairn
