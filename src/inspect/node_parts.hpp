// SPDX-License-Identifier: Apache-2.0
#pragma once
// The node-local parts of a checkpoint (format 2.1) as one machine sees them: the node
// directories `<root>/node-<k>` it can reach (on a cluster, only its own node's; on one machine
// running a job with a node per rank, all of them), and what each holds of a checkpoint.
#include <string>
#include <utility>
#include <vector>

#include "inspect/probe.hpp"

namespace cairn::inspect::detail {

/// Local. The node directories `<root>/node-<k>` present, by node number. Throws kNotFound when
/// `root` does not exist, kInvalidArgument when it is not a directory.
std::vector<std::pair<int, std::string>> node_directories(const std::string& root);

struct NodePart {
  int node = 0;
  std::string path;
  std::string status;   // "ok", "mismatch" (not the part this node should hold), or a status_name
  std::string message;  // why not "ok"
};

/// Local. The file `name` of every node directory that holds one, checked as node `k`'s part of a
/// checkpoint of `nodes` parts (0: any count): committed, a part, of that index and count. Only
/// commit marks and manifests are read.
std::vector<NodePart> probe_node_parts(const std::vector<std::pair<int, std::string>>& directories,
                                       const std::string& name, int nodes);

}  // namespace cairn::inspect::detail
