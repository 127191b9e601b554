// SPDX-License-Identifier: Apache-2.0
#include "storage/node_layout.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace cairn::detail {
namespace {

// A split communicator as a Comm of its own (a duplicate, with errors returned), the split freed.
Comm wrap_split(MPI_Comm split) {
  try {
    Comm comm(split);
    MPI_Comm_free(&split);
    return comm;
  } catch (...) {
    MPI_Comm_free(&split);
    throw;
  }
}

Comm node_or_self(const Comm& job, bool rank_per_node) {
  return rank_per_node ? Comm(MPI_COMM_SELF) : job.node();
}

std::string processor_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  check_mpi(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  return std::string(name, static_cast<std::size_t>(length));
}

// Node indexes sorted by (host, index).
std::vector<int> by_host(const std::vector<std::string>& host_of_node) {
  std::vector<int> order(host_of_node.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return host_of_node[static_cast<std::size_t>(a)] < host_of_node[static_cast<std::size_t>(b)];
  });
  return order;
}

}  // namespace

std::vector<int> partner_assignment(const std::vector<std::string>& host_of_node) {
  const int n = static_cast<int>(host_of_node.size());
  std::map<std::string, int> per_host;
  int most = 0;
  for (const std::string& h : host_of_node) most = std::max(most, ++per_host[h]);
  const int shift = most < n ? most : 1;
  const std::vector<int> order = by_host(host_of_node);
  std::vector<int> keeper(static_cast<std::size_t>(n));
  for (int p = 0; p < n; ++p)
    keeper[static_cast<std::size_t>(order[static_cast<std::size_t>(p)])] =
        order[static_cast<std::size_t>((p + shift) % n)];
  return keeper;
}

std::vector<std::vector<int>> xor_grouping(const std::vector<std::string>& host_of_node,
                                           int group_size) {
  const int n = static_cast<int>(host_of_node.size());
  if (n == 0) return {};
  const int g = std::max(group_size, 2);
  int groups = (n + g - 1) / g;
  if (n >= 2 && n < 2 * groups) groups = n / 2;  // no group of one
  const std::vector<int> order = by_host(host_of_node);
  std::vector<std::vector<int>> result(static_cast<std::size_t>(groups));
  for (int p = 0; p < n; ++p)
    result[static_cast<std::size_t>(p % groups)].push_back(order[static_cast<std::size_t>(p)]);
  for (auto& members : result) std::sort(members.begin(), members.end());
  return result;
}

int NodeLayout::partner_of(int of_node) const {
  return partner_assignment(hosts).at(static_cast<std::size_t>(of_node));
}

int NodeLayout::partner_kept_by(int keeper) const {
  const std::vector<int> keepers = partner_assignment(hosts);
  const auto it = std::find(keepers.begin(), keepers.end(), keeper);
  return static_cast<int>(it - keepers.begin());
}

std::vector<std::vector<int>> NodeLayout::xor_groups(int group_size) const {
  return xor_grouping(hosts, group_size);
}

namespace {

NodeLayout layout_of(const Comm& job, Comm node) {
  // The split is keyed by job rank, so node rank 0 is the node's lowest job rank.
  const bool leader = node.rank() == 0;
  const int64_t lowest = node.allreduce_min(static_cast<int64_t>(job.rank()));
  const std::vector<int64_t> leader_of_rank = job.allgather(lowest);
  const std::vector<std::string> names = job.allgather(processor_name());

  std::vector<int64_t> leader_ranks = leader_of_rank;
  std::sort(leader_ranks.begin(), leader_ranks.end());
  leader_ranks.erase(std::unique(leader_ranks.begin(), leader_ranks.end()), leader_ranks.end());
  const auto index_of = [&](int64_t leader_rank) {
    return static_cast<int>(
        std::lower_bound(leader_ranks.begin(), leader_ranks.end(), leader_rank) -
        leader_ranks.begin());
  };

  NodeLayout layout{.node = std::move(node)};
  layout.nodes = static_cast<int>(leader_ranks.size());
  layout.node_index = index_of(lowest);
  layout.is_leader = leader;
  layout.node_ranks.resize(leader_ranks.size());
  for (std::size_t r = 0; r < leader_of_rank.size(); ++r)
    layout.node_ranks[static_cast<std::size_t>(index_of(leader_of_rank[r]))].push_back(
        static_cast<int>(r));
  for (int64_t r : leader_ranks) layout.hosts.push_back(names[static_cast<std::size_t>(r)]);

  MPI_Comm split = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(job.get(), leader ? 0 : MPI_UNDEFINED, job.rank(), &split),
            "MPI_Comm_split(node leaders)");
  if (leader) layout.leaders.emplace(wrap_split(split));
  return layout;
}

}  // namespace

NodeLayout make_node_layout(const Comm& job, bool rank_per_node) {
  return layout_of(job, node_or_self(job, rank_per_node));
}

NodeLayout make_node_layout_by_color(const Comm& job, int node_color) {
  MPI_Comm split = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(job.get(), node_color, job.rank(), &split), "MPI_Comm_split(nodes)");
  return layout_of(job, wrap_split(split));
}

}  // namespace cairn::detail
