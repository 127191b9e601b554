// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/graph_walk.hpp"

#include "cairn/optim/optimizer.hpp"
#include "cairn/state/state.hpp"
#include "cairn/tensor/variable.hpp"

namespace cairn::detail {

namespace {

int64_t add_node(LiveGraph& g, const std::shared_ptr<Trackable>& object, std::string path) {
  NodeRecord record;
  record.kind = g.nodes.empty() ? "root" : object->kind();
  if (dynamic_cast<const Variable*>(object.get())) record.value_key = variable_key(path);
  if (dynamic_cast<const StateObject*>(object.get())) record.value_key = state_key(path);
  record.path = std::move(path);
  const auto id = static_cast<int64_t>(g.nodes.size());
  g.nodes.push_back({object, std::move(record)});
  g.ids.emplace(object.get(), id);
  return id;
}

}  // namespace

LiveGraph walk_graph(const std::shared_ptr<Trackable>& root) {
  LiveGraph g;
  add_node(g, root, "");
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    // Copy what we need: push_back below may reallocate g.nodes.
    std::shared_ptr<Trackable> object = g.nodes[i].object;
    const std::string path = g.nodes[i].record.path;
    for (const Trackable::Edge& edge : object->edges()) {
      std::shared_ptr<Trackable> child = edge.get();
      if (!child) continue;
      auto it = g.ids.find(child.get());
      const int64_t id =
          it != g.ids.end() ? it->second : add_node(g, child, child_path(path, edge.name));
      g.nodes[i].record.children.emplace_back(edge.name, id);
    }
  }
  const std::size_t reachable = g.nodes.size();
  for (std::size_t i = 0; i < reachable; ++i) {
    auto* optimizer = dynamic_cast<Optimizer*>(g.nodes[i].object.get());
    if (!optimizer) continue;
    for (const Optimizer::Slot& slot : optimizer->slots()) {
      std::shared_ptr<Variable> variable = slot.variable.lock();
      if (!variable || !slot.value) continue;
      auto var_it = g.ids.find(variable.get());
      if (var_it == g.ids.end()) continue;  // TensorFlow too saves slots only of saved variables
      auto slot_it = g.ids.find(slot.value.get());
      const int64_t slot_id =
          slot_it != g.ids.end()
              ? slot_it->second
              : add_node(g, slot.value,
                         slot_path(g.nodes[static_cast<std::size_t>(var_it->second)].record.path,
                                   g.nodes[i].record.path, slot.name));
      g.nodes[i].record.slots.push_back({var_it->second, slot.name, slot_id});
    }
  }
  return g;
}

}  // namespace cairn::detail
