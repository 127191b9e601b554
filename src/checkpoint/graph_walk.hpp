// SPDX-License-Identifier: Apache-2.0
#pragma once
// Breadth-first traversal of a live object graph into the manifest's node list: each shared object
// once, under its first path; slot variables after the objects reachable by edges.
#include <memory>
#include <unordered_map>
#include <vector>

#include "cairn/graph/trackable.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

struct LiveNode {
  std::shared_ptr<Trackable> object;
  NodeRecord record;
};

struct LiveGraph {
  std::vector<LiveNode> nodes;  // nodes[0] is the root
  std::unordered_map<const Trackable*, int64_t> ids;
};

/// Local. Walks the graph from `root`; expired weak edges are skipped.
LiveGraph walk_graph(const std::shared_ptr<Trackable>& root);

/// The key under which an object's value is stored, TensorFlow style.
std::string variable_key(const std::string& path);
std::string state_key(const std::string& path);
/// `parent`/`escape_name(name)`, or just the escaped name at the root.
std::string child_path(const std::string& parent, const std::string& name);
/// The path of a slot variable of `variable_path` held by the optimizer at `optimizer_path`.
std::string slot_path(const std::string& variable_path, const std::string& optimizer_path,
                      const std::string& slot_name);

}  // namespace cairn::detail
