#include "cairn/graph/trackable.hpp"

#include <algorithm>

#include "cairn/core/error.hpp"

namespace cairn {
namespace {

void check_edge(const std::string& name, const Trackable* child) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a dependency needs a non-empty name");
  if (child == nullptr)
    throw Error(ErrorCode::kInvalidArgument, "dependency '" + name + "' is null");
}

}  // namespace

void Trackable::add_edge(Edge edge) {
  auto same_name = std::find_if(edges_.begin(), edges_.end(),
                                [&](const Edge& existing) { return existing.name == edge.name; });
  if (same_name != edges_.end()) {
    *same_name = std::move(edge);  // keeps the edge's position, so traversal order is stable
  } else {
    edges_.push_back(std::move(edge));
  }
}

void Trackable::track(const std::string& name, std::shared_ptr<Trackable> child) {
  check_edge(name, child.get());
  add_edge(Edge{name, child, {}});
  // Copy the hook: restoring the child may rebind this object and drop the binding's hook.
  if (const std::shared_ptr<RestoreHook> hook = binding_.hook)
    hook->on_child_attached(*this, binding_.node, name, child);
}

void Trackable::track_weak(const std::string& name, const std::shared_ptr<Trackable>& child) {
  check_edge(name, child.get());
  add_edge(Edge{name, nullptr, child});
  if (const std::shared_ptr<RestoreHook> hook = binding_.hook)
    hook->on_child_attached(*this, binding_.node, name, child);
}

std::shared_ptr<Trackable> Trackable::child(const std::string& name) const {
  for (const Edge& edge : edges_)
    if (edge.name == name) return edge.get();
  return nullptr;
}

}  // namespace cairn
