// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/plan_cache.hpp"

#include "cairn/optim/optimizer.hpp"
#include "cairn/state/state.hpp"

namespace cairn::detail {

void PlanCache::remember(const LiveGraph& graph, const PreparedSave& prepared) {
  clear();
  objects_.reserve(graph.nodes.size());
  addresses_.reserve(graph.nodes.size());
  for (const LiveNode& node : graph.nodes) {
    if (dynamic_cast<const Optimizer*>(node.object.get()))
      optimizer_nodes_.push_back(objects_.size());
    if (dynamic_cast<const StateObject*>(node.object.get()))
      state_nodes_.push_back(objects_.size());
    objects_.push_back(node.object);
    addresses_.push_back(node.object.get());
  }
  ids_ = graph.ids;
  live_writes_.reserve(prepared.plan.writes.size());
  for (const LocalWrite& w : prepared.plan.writes)
    live_writes_.emplace_back(w.buffer, w.buffer_box);
}

void PlanCache::keep(PreparedSave prepared) {
  if (objects_.empty() || prepared.plan.writes.size() != live_writes_.size()) return clear();
  kept_ = std::move(prepared);
}

void PlanCache::clear() noexcept {
  objects_.clear();
  addresses_.clear();
  ids_.clear();
  optimizer_nodes_.clear();
  state_nodes_.clear();
  live_writes_.clear();
  kept_.reset();
}

std::vector<const Trackable*> PlanCache::match(const std::shared_ptr<Trackable>& root) const {
  const std::vector<NodeRecord>& nodes = kept_->nodes;
  if (nodes.size() != objects_.size() || objects_.empty()) return {};
  std::vector<const Trackable*> live(nodes.size(), nullptr);
  // A remembered object that expired cannot be matched: its address may belong to another now.
  auto remembered = [&](const Trackable* object, int64_t& id) {
    const auto it = ids_.find(object);
    if (it == ids_.end() || objects_[static_cast<std::size_t>(it->second)].expired()) return false;
    id = it->second;
    return true;
  };
  // `object` is the remembered node `id` and still alive.
  auto is_node = [&](const Trackable* object, int64_t id) {
    const auto i = static_cast<std::size_t>(id);
    return id >= 0 && i < addresses_.size() && addresses_[i] == object && !objects_[i].expired();
  };
  // The same breadth-first order as walk_graph(): a node is new exactly when its id is the next.
  std::size_t discovered = 1;
  auto visit = [&](const Trackable* object, int64_t id) {
    const auto i = static_cast<std::size_t>(id);
    if (i == discovered && i < live.size()) {
      live[i] = object;
      ++discovered;
      return true;
    }
    return i < discovered && live[i] == object;
  };
  if (!is_node(root.get(), 0)) return {};
  live[0] = root.get();
  for (std::size_t i = 0; i < discovered; ++i) {
    const auto& children = nodes[i].children;
    std::size_t k = 0;
    for (const Trackable::Edge& edge : live[i]->edges()) {
      // No shared_ptr copy for strong edges: its atomic count updates are most of this loop.
      std::shared_ptr<Trackable> locked;
      const Trackable* child = edge.strong ? edge.strong.get() : (locked = edge.weak.lock()).get();
      if (!child) continue;
      if (k == children.size() || !is_node(child, children[k].second) ||
          children[k].first != edge.name || !visit(child, children[k].second))
        return {};
      ++k;
    }
    if (k != children.size()) return {};
  }
  // Only optimizers have slots: every other node's record has none, since the walk that made the
  // records saw the same objects.
  const std::size_t reachable = discovered;
  for (const std::size_t i : optimizer_nodes_) {
    // Defensive (slot values are variables, so no optimizer is reached through slots only): the
    // walk saves the slots of reachable optimizers alone, and the indices ascend.
    if (i >= reachable) break;
    const auto* optimizer = static_cast<const Optimizer*>(live[i]);
    const auto& slots = nodes[i].slots;
    std::size_t k = 0;
    for (const Optimizer::Slot& slot : optimizer->slots()) {
      const std::shared_ptr<Variable> variable = slot.variable.lock();
      if (!variable || !slot.value) continue;
      int64_t variable_id = -1;
      // As walk_graph(): slots of variables outside the graph are not saved.
      if (!remembered(variable.get(), variable_id) ||
          static_cast<std::size_t>(variable_id) >= discovered ||
          live[static_cast<std::size_t>(variable_id)] != variable.get())
        continue;
      if (k == slots.size() || slots[k].variable != variable_id || slots[k].name != slot.name ||
          !is_node(slot.value.get(), slots[k].slot) || !visit(slot.value.get(), slots[k].slot))
        return {};
      ++k;
    }
    if (k != slots.size()) return {};
  }
  if (discovered != nodes.size()) return {};
  return live;
}

std::optional<PreparedSave> PlanCache::take(const std::shared_ptr<Trackable>& root,
                                            const Session& session) {
  if (!kept_) return std::nullopt;
  const std::vector<const Trackable*> live = match(root);
  if (live.empty()) {
    clear();
    return std::nullopt;
  }
  PreparedSave prepared = std::move(*kept_);
  kept_.reset();
  for (std::size_t i = 0; i < live_writes_.size(); ++i) {
    prepared.plan.writes[i].buffer = live_writes_[i].first;
    prepared.plan.writes[i].buffer_box = live_writes_[i].second;
  }
  std::vector<const StateObject*> states;
  states.reserve(state_nodes_.size());
  for (const std::size_t i : state_nodes_)
    states.push_back(static_cast<const StateObject*>(live[i]));
  serialize_states(prepared.plan, states, session);
  return prepared;
}

}  // namespace cairn::detail
