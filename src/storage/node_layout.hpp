// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which ranks share a node, which nodes share a host, and the deterministic choices of redundancy
// partners and XOR groups built on that: every rank computes the same answers from the same
// layout, so no choice ever needs to travel.
#include <optional>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"

namespace cairn::detail {

struct NodeLayout {
  Comm node;           // the ranks of this node (the job's order)
  int node_index = 0;  // nodes are numbered in the order of their lowest job rank
  int nodes = 1;
  bool is_leader = false;          // the lowest job rank of its node
  std::optional<Comm> leaders;     // over the node leaders (its rank == node index); leaders only
  std::vector<std::string> hosts;  // per node: MPI_Get_processor_name of its leader
  std::vector<std::vector<int>> node_ranks;  // per node: its job ranks, ascending

  /// Local. The node that keeps node `of_node`'s partner copy (itself when there is one node).
  int partner_of(int of_node) const;
  /// Local. The node whose partner copy node `keeper` keeps (inverse of partner_of).
  int partner_kept_by(int keeper) const;
  /// Local. The XOR groups for a group size (>= 2), each ascending by node index.
  std::vector<std::vector<int>> xor_groups(int group_size) const;
};

/// Collective over `job`. Groups the ranks by node (MPI_COMM_TYPE_SHARED); with `rank_per_node`
/// every rank is its own node (tests and benchmarks on one machine).
NodeLayout make_node_layout(const Comm& job, bool rank_per_node);
/// Collective over `job`. Ranks passing the same `node_color` (>= 0) form one node: tests and
/// benchmarks on one machine that need nodes of several ranks.
NodeLayout make_node_layout_by_color(const Comm& job, int node_color);

/// Local. Partner assignment for nodes on the given hosts: result[k] keeps node k's copy. Nodes are
/// sorted by (host, index); node at sorted position p is kept by the node at position
/// (p + m) mod n, where m is the largest number of nodes on one host (1 if every node shares one
/// host). That is a bijection (each node keeps exactly one copy), and the keeper is on another host
/// whenever no host holds more than half the nodes.
std::vector<int> partner_assignment(const std::vector<std::string>& host_of_node);

/// Local. XOR groups for nodes on the given hosts. G = ceil(n / g) groups, or floor(n / 2) when
/// that would leave a group of one; nodes sorted by (host, index) are dealt round-robin to the
/// groups, so group sizes differ by at most one, never exceed g (except g = 2 with odd n: one group
/// of 3), and the members of a group are on different hosts whenever no host holds more than G
/// nodes. Each group is sorted by node index. One node: a single group of one.
std::vector<std::vector<int>> xor_grouping(const std::vector<std::string>& host_of_node,
                                           int group_size);

}  // namespace cairn::detail
