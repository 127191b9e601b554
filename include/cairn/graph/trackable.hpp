// SPDX-License-Identifier: Apache-2.0
#pragma once
// The object graph: trackable objects joined by named edges, as in tf.train.Checkpoint.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace cairn {

class Trackable;

/// Implemented by the checkpoint layer: receives objects attached after a restore so they can be
/// restored on attach (deferred restoration). Calls are local: no collective is ever made here.
class RestoreHook {
 public:
  virtual ~RestoreHook() = default;
  virtual void on_child_attached(Trackable& parent, int64_t parent_node, const std::string& name,
                                 const std::shared_ptr<Trackable>& child) = 0;
  virtual void on_slot_added(Trackable& optimizer, int64_t optimizer_node,
                             const std::shared_ptr<Trackable>& variable,
                             const std::string& slot_name,
                             const std::shared_ptr<Trackable>& slot) = 0;
};

/// Which checkpoint node an object was matched to by one restore that reached it.
struct RestoreBinding {
  std::shared_ptr<RestoreHook> hook;
  int64_t node = -1;
  /// Orders restores: a later restore() call has a larger number, whatever the order in which
  /// objects are attached later.
  uint64_t generation = 0;
};

class Trackable : public std::enable_shared_from_this<Trackable> {
 public:
  struct Edge {
    std::string name;
    std::shared_ptr<Trackable> strong;
    std::weak_ptr<Trackable> weak;  // used instead of `strong` for back edges that close a cycle
    std::shared_ptr<Trackable> get() const { return strong ? strong : weak.lock(); }
  };

  Trackable() = default;
  virtual ~Trackable() = default;
  Trackable(const Trackable&) = delete;
  Trackable& operator=(const Trackable&) = delete;

  /// Local. Adds (or replaces) the dependency `name`. If this object was matched by a restore whose
  /// checkpoint has a child of that name, `child` is restored now, from this rank alone.
  void track(const std::string& name, std::shared_ptr<Trackable> child);
  /// Local. Like track(), but the edge does not keep `child` alive; use it for edges that close a
  /// cycle so that the graph can be freed.
  void track_weak(const std::string& name, const std::shared_ptr<Trackable>& child);
  /// Local. The child called `name`, or null.
  std::shared_ptr<Trackable> child(const std::string& name) const;
  const std::vector<Edge>& edges() const noexcept { return edges_; }

  /// A short kind name for diagnostics and the manifest ("node", "variable", "state", ...).
  virtual const char* kind() const noexcept { return "node"; }

  /// Local. The binding of the newest restore that matched this object, or an empty binding.
  const RestoreBinding& restore_binding() const noexcept;
  /// Local. Every restore still bound to this object, oldest first. A child attached later is
  /// offered to each, newest first (as TensorFlow does with its deferred dependencies).
  const std::vector<RestoreBinding>& restore_bindings() const noexcept { return bindings_; }
  /// Local. Replaces every binding with `binding`, or removes them all if its hook is null.
  void set_restore_binding(RestoreBinding binding);
  /// Local. Adds `binding`, or replaces the binding of the same hook; keeps generation order.
  void add_restore_binding(RestoreBinding binding);
  /// Local. Removes the binding of `hook`, if any.
  void remove_restore_binding(const RestoreHook* hook) noexcept;
  /// The generation of the restore whose value this object holds (0: none). An older restore
  /// never overwrites a value a newer one wrote.
  uint64_t restored_generation() const noexcept { return restored_generation_; }
  void set_restored_generation(uint64_t generation) noexcept { restored_generation_ = generation; }

 protected:
  void add_edge(Edge edge);

 private:
  void announce_child(const std::string& name, const std::shared_ptr<Trackable>& child);

  std::vector<Edge> edges_;
  // Position of each edge in edges_ by name: a module may hold tens of thousands of children.
  std::unordered_map<std::string, std::size_t> edge_index_;
  std::vector<RestoreBinding> bindings_;
  uint64_t restored_generation_ = 0;
};

/// A plain container of named dependencies (a "module" or "layer").
class Module : public Trackable {
 public:
  /// Local. Tracks `child` under `name` and returns it, for one-line construction.
  template <class T>
  std::shared_ptr<T> add(const std::string& name, std::shared_ptr<T> child) {
    track(name, child);
    return child;
  }
};

}  // namespace cairn
