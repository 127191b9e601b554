// SPDX-License-Identifier: Apache-2.0
#pragma once
// Plan once, reuse: a save of an unchanged graph (the same objects, joined by the same edges and
// slots) reuses the node records and the save plan of the previous save instead of walking the
// graph into new records and planning every tensor again. Variables cannot change dtype, shape or
// layout, and the session's options are fixed, so the same objects mean the same plan; only the
// opaque state is serialized anew. Ranks still agree on the graph's signature before writing.
#include <cstddef>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cairn/comm/session.hpp"
#include "checkpoint/graph_walk.hpp"
#include "checkpoint/save.hpp"

namespace cairn::detail {

class PlanCache {
 public:
  /// Local. Remembers the objects of `graph`, from which `prepared` was just planned, and where
  /// each of its writes reads the live variables (before any staging).
  void remember(const LiveGraph& graph, const PreparedSave& prepared);
  /// Local. Gives back a save after it succeeded, for the next save of the same graph.
  void keep(PreparedSave prepared);
  /// Local. Forgets everything (a failed save leaves its plan in an unknown state).
  void clear() noexcept;

  /// Local. The kept plan, if the graph under `root` still has exactly the remembered objects,
  /// edges and slots: its writes point at the live variables again and the opaque state is
  /// serialized anew. Otherwise nullopt, and the cache is empty.
  std::optional<PreparedSave> take(const std::shared_ptr<Trackable>& root, const Session& session);

 private:
  // The live object of each node if the graph under `root` has the remembered shape, else empty.
  std::vector<const Trackable*> match(const std::shared_ptr<Trackable>& root) const;

  // Weak, so that the cache keeps no object alive; an expired one never matches, since another
  // object may have its address by now.
  std::vector<std::weak_ptr<Trackable>> objects_;
  // The same objects' addresses: an edge is checked against the node it led to last time with
  // one comparison, where a lookup in `ids_` per edge was most of the reuse's cost at 20,000 nodes.
  std::vector<const Trackable*> addresses_;
  std::unordered_map<const Trackable*, int64_t> ids_;
  // Which nodes are optimizers and which are opaque state, found once when the plan is made: a
  // matched node is the same live object, so its dynamic type is the same, and the dynamic_cast of
  // every node on every reuse was over half of the reuse's cost at 20,000 nodes.
  std::vector<std::size_t> optimizer_nodes_;
  std::vector<std::size_t> state_nodes_;
  std::vector<std::pair<const std::byte*, Box>> live_writes_;
  std::optional<PreparedSave> kept_;
};

}  // namespace cairn::detail
