#include "cairn/graph/trackable.hpp"

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
  if (const auto found = edge_index_.find(edge.name); found != edge_index_.end()) {
    edges_[found->second] =
        std::move(edge);  // keeps the edge's position: traversal order is stable
    return;
  }
  edges_.push_back(std::move(edge));
  try {
    edge_index_.emplace(edges_.back().name, edges_.size() - 1);
  } catch (...) {
    edges_.pop_back();
    throw;
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
  const auto found = edge_index_.find(name);
  return found == edge_index_.end() ? nullptr : edges_[found->second].get();
}

}  // namespace cairn
