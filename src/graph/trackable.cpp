// SPDX-License-Identifier: Apache-2.0
#include "cairn/graph/trackable.hpp"

#include <iterator>

#include "cairn/core/error.hpp"
#include "core/printable.hpp"

namespace cairn {
namespace {

void check_edge(const std::string& name, const Trackable* child) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a dependency needs a non-empty name");
  if (child == nullptr)
    throw Error(ErrorCode::kInvalidArgument,
                "dependency '" + detail::printable(name) + "' is null");
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

void Trackable::announce_child(const std::string& name, const std::shared_ptr<Trackable>& child) {
  if (bindings_.empty()) return;
  // A copy: restoring the child may add or drop bindings of this object (and their hooks' last
  // references). Newest first, so the newest restore's value is the one read first.
  const std::vector<RestoreBinding> bindings = bindings_;
  for (auto b = bindings.rbegin(); b != bindings.rend(); ++b)
    b->hook->on_child_attached(*this, b->node, name, child);
}

void Trackable::track(const std::string& name, std::shared_ptr<Trackable> child) {
  check_edge(name, child.get());
  add_edge(Edge{name, child, {}});
  announce_child(name, child);
}

void Trackable::track_weak(const std::string& name, const std::shared_ptr<Trackable>& child) {
  check_edge(name, child.get());
  add_edge(Edge{name, nullptr, child});
  announce_child(name, child);
}

const RestoreBinding& Trackable::restore_binding() const noexcept {
  static const RestoreBinding none;
  return bindings_.empty() ? none : bindings_.back();
}

void Trackable::set_restore_binding(RestoreBinding binding) {
  bindings_.clear();
  if (binding.hook) bindings_.push_back(std::move(binding));
}

void Trackable::add_restore_binding(RestoreBinding binding) {
  remove_restore_binding(binding.hook.get());
  auto at = bindings_.end();
  while (at != bindings_.begin() && std::prev(at)->generation > binding.generation) --at;
  bindings_.insert(at, std::move(binding));
}

void Trackable::remove_restore_binding(const RestoreHook* hook) noexcept {
  std::erase_if(bindings_, [hook](const RestoreBinding& b) { return b.hook.get() == hook; });
}

std::shared_ptr<Trackable> Trackable::child(const std::string& name) const {
  const auto found = edge_index_.find(name);
  return found == edge_index_.end() ? nullptr : edges_[found->second].get();
}

}  // namespace cairn
