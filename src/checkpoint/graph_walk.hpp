// SPDX-License-Identifier: Apache-2.0
#pragma once
// Breadth-first traversal of a live object graph into the manifest's node list: each shared object
// once, under its first path; slot variables after the objects reachable by edges.
#include <memory>
#include <unordered_map>
#include <vector>

#include "cairn/graph/trackable.hpp"
#include "storage/keys.hpp"
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

}  // namespace cairn::detail
