// SPDX-License-Identifier: Apache-2.0
// cairn tree: the object graph of a checkpoint. Each object is expanded once, under the edge by
// which a breadth-first walk from the root first reaches it (the path in the manifest); every other
// edge to it prints a back-reference. Slot variables are listed under their optimizer.
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <unordered_map>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "core/printable.hpp"
#include "inspect/probe.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::inspect {
namespace {

using nlohmann::ordered_json;

// Where a node is expanded: under edge `edge` of `parent`, or under slot `slot` of optimizer
// `parent` when no edge reaches it.
struct Home {
  int64_t parent = -1;
  int64_t edge = -1;
  int64_t slot = -1;
};

class TreePrinter {
 public:
  TreePrinter(const Manifest& m, const std::string& checkpoint)
      : m_(m), checkpoint_(checkpoint), homes_(m.nodes.size()) {
    for (const TensorRecord& t : m.tensors) tensors_.emplace(t.key, &t);
    for (const StateRecord& s : m.states) states_.emplace(s.key, &s);
    find_homes();
  }

  void print(std::ostream& out) {
    lines_.push_back({"(root)", ""});
    expand(0, "");
    // Objects no edge or slot reaches (cairn never writes them; a foreign writer might).
    bool header = false;
    for (std::size_t n = 1; n < homes_.size(); ++n) {
      if (homes_[n].parent >= 0) continue;
      if (!header) lines_.push_back({"(not reachable from the root)", ""});
      header = true;
      lines_.push_back(
          {"    " + cairn::detail::printable(m_.nodes[n].path), describe(static_cast<int64_t>(n))});
    }
    std::size_t width = 0;
    for (const auto& [left, right] : lines_)
      if (!right.empty()) width = std::max(width, detail::display_width(left));
    for (const auto& [left, right] : lines_) {
      if (right.empty()) {
        out << left << '\n';
        continue;
      }
      out << left << std::string(width - detail::display_width(left) + 2, ' ') << right << '\n';
    }
  }

 private:
  void find_homes() {
    std::vector<bool> seen(m_.nodes.size(), false);
    seen[0] = true;
    std::deque<int64_t> queue{0};
    while (!queue.empty()) {
      const int64_t n = queue.front();
      queue.pop_front();
      const auto& children = m_.nodes[static_cast<std::size_t>(n)].children;
      for (std::size_t e = 0; e < children.size(); ++e) {
        const auto child = static_cast<std::size_t>(children[e].second);
        if (seen[child]) continue;
        seen[child] = true;
        homes_[child] = {n, static_cast<int64_t>(e), -1};
        queue.push_back(children[e].second);
      }
    }
    for (std::size_t n = 0; n < m_.nodes.size(); ++n) {
      const auto& slots = m_.nodes[n].slots;
      for (std::size_t s = 0; s < slots.size(); ++s) {
        const auto slot = static_cast<std::size_t>(slots[s].slot);
        if (seen[slot]) continue;
        seen[slot] = true;
        homes_[slot] = {static_cast<int64_t>(n), -1, static_cast<int64_t>(s)};
      }
    }
  }

  std::string describe(int64_t id) const {
    const NodeRecord& n = m_.nodes[static_cast<std::size_t>(id)];
    if (auto t = tensors_.find(n.value_key); !n.value_key.empty() && t != tensors_.end())
      return n.kind + " " + std::string(dtype_name(t->second->dtype)) + " " +
             shape_to_string(t->second->shape) + "  " + t->second->layout + ", " +
             (t->second->packed ? "packed" : "dataset");
    if (auto s = states_.find(n.value_key); !n.value_key.empty() && s != states_.end())
      return n.kind + " " + detail::scope_name(s->second->scope) + ", " +
             detail::plural(static_cast<int64_t>(s->second->blobs.size()), "value") + ", " +
             detail::human_bytes(detail::state_bytes(*s->second, checkpoint_));
    return n.kind == "node" ? "" : n.kind;
  }

  std::string reference(int64_t id) const {
    const std::string& path = m_.nodes[static_cast<std::size_t>(id)].path;
    return "-> " + (path.empty() ? std::string("(root)") : cairn::detail::printable(path)) +
           "  (shared, expanded there)";
  }

  // One entry below `parent`: a label, and the node it leads to, expanded if this is its home.
  void entry(const std::string& prefix, bool last, const std::string& label, int64_t child,
             bool home) {
    const std::string branch = prefix + (last ? "└── " : "├── ");
    lines_.push_back(
        {branch + cairn::detail::printable(label), home ? describe(child) : reference(child)});
    if (home) expand(child, prefix + (last ? "    " : "│   "));
  }

  void expand(int64_t id, const std::string& prefix) {
    const NodeRecord& n = m_.nodes[static_cast<std::size_t>(id)];
    const bool has_slots = !n.slots.empty();
    for (std::size_t e = 0; e < n.children.size(); ++e) {
      const auto& [name, child] = n.children[e];
      const Home& h = homes_[static_cast<std::size_t>(child)];
      entry(prefix, e + 1 == n.children.size() && !has_slots, name, child,
            h.parent == id && h.edge == static_cast<int64_t>(e));
    }
    if (!has_slots) return;
    lines_.push_back({prefix + "└── (slots)", ""});
    const std::string inner = prefix + "    ";
    for (std::size_t s = 0; s < n.slots.size(); ++s) {
      const SlotRecord& slot = n.slots[s];
      const std::string& var_path = m_.nodes[static_cast<std::size_t>(slot.variable)].path;
      const Home& h = homes_[static_cast<std::size_t>(slot.slot)];
      entry(inner, s + 1 == n.slots.size(), slot.name + " of " + var_path, slot.slot,
            h.parent == id && h.slot == static_cast<int64_t>(s));
    }
  }

  const Manifest& m_;
  const std::string& checkpoint_;
  std::vector<Home> homes_;
  std::unordered_map<std::string, const TensorRecord*> tensors_;
  std::unordered_map<std::string, const StateRecord*> states_;
  std::vector<std::pair<std::string, std::string>> lines_;
};

// The graph as it is stored: every node once with its edges and slots, by index (nodes[0] is the
// root), and its value's dtype and shape or scope.
ordered_json tree_json(const detail::Probe& p) {
  const Manifest& m = *p.manifest;
  std::unordered_map<std::string, const TensorRecord*> tensors;
  std::unordered_map<std::string, const StateRecord*> states;
  for (const TensorRecord& t : m.tensors) tensors.emplace(t.key, &t);
  for (const StateRecord& s : m.states) states.emplace(s.key, &s);
  ordered_json nodes = ordered_json::array();
  for (std::size_t i = 0; i < m.nodes.size(); ++i) {
    const NodeRecord& n = m.nodes[i];
    ordered_json j{{"id", i}, {"path", n.path}, {"kind", n.kind}};
    if (!n.value_key.empty()) {
      j["value_key"] = n.value_key;
      if (auto t = tensors.find(n.value_key); t != tensors.end()) {
        j["dtype"] = dtype_name(t->second->dtype);
        j["shape"] = t->second->shape;
        j["layout"] = t->second->layout;
        j["storage"] = t->second->packed ? "packed" : "dataset";
      } else if (auto s = states.find(n.value_key); s != states.end()) {
        j["scope"] = detail::scope_name(s->second->scope);
        j["values"] = s->second->blobs.size();
        j["bytes"] = detail::state_bytes(*s->second, p.path);
      }
    }
    ordered_json children = ordered_json::array();
    for (const auto& [name, child] : n.children)
      children.push_back({{"name", name}, {"node", child}});
    j["children"] = std::move(children);
    if (!n.slots.empty()) {
      ordered_json slots = ordered_json::array();
      for (const SlotRecord& slot : n.slots)
        slots.push_back({{"name", slot.name}, {"variable", slot.variable}, {"node", slot.slot}});
      j["slots"] = std::move(slots);
    }
    nodes.push_back(std::move(j));
  }
  return {{"path", p.path}, {"nodes", std::move(nodes)}};
}

}  // namespace

int tree(const TreeOptions& options, std::ostream& out) {
  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  const detail::Probe p = detail::probe_file(options.path);
  if (p.status != detail::FileStatus::kCommitted) detail::throw_probe_error(p);
  if (options.json)
    out << tree_json(p).dump(2) << '\n';
  else
    TreePrinter(*p.manifest, p.path).print(out);
  return kExitOk;
}

}  // namespace cairn::inspect
