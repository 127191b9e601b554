// SPDX-License-Identifier: Apache-2.0
// Level-2 redundancy (src/storage/redundancy.hpp) with real files: every rank is a node
// (rank_per_node) with its own level-1 and redundancy directories; a lost node loses both. Partner
// copies and XOR parity: rebuilt bit-identical, protected again afterwards, losses that cannot be
// rebuilt named the same way on every rank, sparse files kept small, and a failing protect leaving
// nothing behind.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "storage/node_layout.hpp"
#include "storage/redundancy.hpp"
#include "support/test_support.hpp"

namespace cairn::detail {
namespace {

namespace fs = std::filesystem;
using testing::expect_same_error_everywhere;
using testing::scratch_dir;

// A small block, so that files of a few hundred KiB take many rounds.
constexpr int64_t kBlock = 4099;

struct Node {
  std::string l1_dir, own_file, red_dir;
};

// Each node's directories under one scratch directory.
Node node_dirs(const std::string& root, int node, const std::string& name) {
  const std::string base = root + "/node" + std::to_string(node);
  return {base + "/l1", base + "/l1/" + name + ".h5", base + "/red"};
}

// Node-specific bytes: different on every node and at every offset.
std::string node_bytes(int node, int64_t size, int salt = 0) {
  std::string bytes(static_cast<std::size_t>(size), '\0');
  uint32_t x = 2654435761u * static_cast<uint32_t>(node + 1) + static_cast<uint32_t>(salt);
  for (auto& c : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return bytes;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "<missing>";
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

// A node lost with its host: its level-1 file and its redundancy directory.
void lose(const Node& node) {
  fs::remove(node.own_file);
  fs::remove_all(node.red_dir);
}

std::string describe(const RebuildOutcome& o) {
  std::string text = o.complete ? "complete" : "incomplete";
  text += " rebuilt[";
  for (int n : o.rebuilt_nodes) text += std::to_string(n) + ",";
  text += "] lost[";
  for (int n : o.lost_nodes) text += std::to_string(n) + ",";
  return text + "] " + o.reason;
}

class RedundancyTest : public ::testing::Test {
 protected:
  RedundancyTest() : job_(MPI_COMM_WORLD), layout_(make_node_layout(job_, true)) {}

  int rank() const { return job_.rank(); }
  int nodes() const { return layout_.nodes; }

  // Directories of this rank's node; contents chosen per node by `size_of`.
  Node setup(const std::string& root, const std::string& name, int64_t size, int salt = 0) {
    const Node n = node_dirs(root, rank(), name);
    write_bytes(n.own_file, node_bytes(rank(), size, salt));
    return n;
  }

  // The outcome, after checking it is the same on every rank.
  RebuildOutcome agreed_rebuild(const RedundancySpec& spec, const std::string& name,
                                const Node& n) {
    const RebuildOutcome o = rebuild(job_, layout_, spec, name, n.own_file, n.red_dir);
    const auto all = job_.allgather(describe(o));
    for (const auto& t : all) EXPECT_EQ(t, all[0]);
    return o;
  }

  void protect_here(const RedundancySpec& spec, const std::string& name, const Node& n) {
    protect(job_, layout_, spec, name, n.own_file, n.red_dir);
  }

  // Loses `victims`, rebuilds and checks every node's file is back bit-identical.
  void lose_and_rebuild(
      const RedundancySpec& spec, const std::string& name, const Node& n,
      const std::vector<int>& victims,
      const std::function<std::string(const std::string&)>& snapshot = read_bytes) {
    const std::string before = snapshot(n.own_file);
    if (std::find(victims.begin(), victims.end(), rank()) != victims.end()) lose(n);
    job_.barrier();
    const RebuildOutcome o = agreed_rebuild(spec, name, n);
    EXPECT_TRUE(o.complete) << describe(o);
    EXPECT_EQ(o.rebuilt_nodes, victims);
    EXPECT_TRUE(o.lost_nodes.empty());
    EXPECT_TRUE(snapshot(n.own_file) == before) << "node " << rank() << " differs after rebuild";
    EXPECT_TRUE(fs::exists(n.red_dir + "/" + name + ".redundancy.json"));
  }

  Comm job_;
  NodeLayout layout_;
};

TEST_F(RedundancyTest, LayoutOfOneRankPerNode) {
  EXPECT_EQ(layout_.nodes, job_.size());
  EXPECT_EQ(layout_.node_index, rank());
  EXPECT_TRUE(layout_.is_leader);
  ASSERT_TRUE(layout_.leaders.has_value());
  EXPECT_EQ(layout_.leaders->rank(), rank());
  ASSERT_EQ(layout_.node_ranks.size(), static_cast<std::size_t>(job_.size()));
  for (int k = 0; k < nodes(); ++k) {
    EXPECT_EQ(layout_.node_ranks[static_cast<std::size_t>(k)], std::vector<int>{k});
    EXPECT_EQ(layout_.partner_kept_by(layout_.partner_of(k)), k);
    if (nodes() > 1) {
      EXPECT_NE(layout_.partner_of(k), k);
    }
  }
  EXPECT_EQ(layout_.hosts.size(), static_cast<std::size_t>(nodes()));
}

TEST_F(RedundancyTest, LayoutOfSharedMemoryNodes) {
  // One machine: one node holding every rank; only its lowest rank leads.
  const NodeLayout shared = make_node_layout(job_, false);
  EXPECT_EQ(shared.nodes, 1);
  EXPECT_EQ(shared.node_index, 0);
  EXPECT_EQ(shared.is_leader, rank() == 0);
  EXPECT_EQ(shared.leaders.has_value(), rank() == 0);
  EXPECT_EQ(shared.node.size(), job_.size());
  ASSERT_EQ(shared.node_ranks.size(), 1u);
  EXPECT_EQ(shared.node_ranks[0].size(), static_cast<std::size_t>(job_.size()));
  EXPECT_EQ(shared.partner_of(0), 0);
}

// The tests run on one machine: one node, whose lowest rank is 0; in a communicator of the odd
// ranks, the lowest odd rank.
TEST_F(RedundancyTest, NodeCommOfAnyCommunicator) {
  const Comm node = job_.node();
  const bool lowest = node.rank() == 0;
  EXPECT_EQ(lowest, job_.rank() == 0);
  EXPECT_EQ(job_.allreduce_sum(lowest ? 1 : 0), 1);
  EXPECT_EQ(node.size(), job_.size());
  MPI_Comm split = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_split(MPI_COMM_WORLD, job_.rank() % 2, job_.rank(), &split), MPI_SUCCESS);
  const Comm half(split);
  MPI_Comm_free(&split);
  EXPECT_EQ(half.node().rank() == 0, job_.rank() < 2);
}

TEST(RedundancyLayout, PartnersOnOtherHosts) {
  const std::vector<std::string> hosts = {"b", "a", "b", "a", "c", "c"};
  const std::vector<int> keeper = partner_assignment(hosts);
  std::vector<int> kept(hosts.size(), 0);
  for (std::size_t k = 0; k < hosts.size(); ++k) {
    const auto p = static_cast<std::size_t>(keeper[k]);
    EXPECT_NE(hosts[p], hosts[k]) << "node " << k;
    ++kept[p];
  }
  for (int c : kept) EXPECT_EQ(c, 1);  // every node keeps exactly one copy
  EXPECT_EQ(partner_assignment({"x", "x", "x"}), (std::vector<int>{1, 2, 0}));
  EXPECT_EQ(partner_assignment({"x"}), std::vector<int>{0});
}

// Recovery finds orphaned redundancy files through the module that names them: every kind of
// redundancy file (temporary ones too) names its checkpoint once, anything else is ignored.
TEST(RedundancyFiles, CheckpointsOfTheRedundancyFilesInADirectory) {
  const std::string dir = scratch_dir() + "/rank" + std::to_string(testing::session().rank());
  fs::create_directories(dir);
  for (const char* file : {"ckpt-3.h5.redundancy.json", "ckpt-3.h5.partner-of-node1",
                           "ckpt-4.h5.xor-g0-n2.tmp", "ckpt-5.h5.redundancy.json.tmp-77",
                           "ckpt-6.h5", "ckpt-7.h5.partner-of-nodeX", "notes.txt", ".xor-g1-n0"})
    std::ofstream(dir + "/" + file) << "x";
  std::vector<std::string> found = redundancy_checkpoints(dir);
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (std::vector<std::string>{"ckpt-3.h5", "ckpt-4.h5", "ckpt-5.h5"}));
  EXPECT_TRUE(redundancy_checkpoints(dir + "/missing").empty());
}

TEST(RedundancyLayout, XorGroupsSpreadOverHostsWithoutGroupsOfOne) {
  // 4 hosts with 2 nodes each, groups of 4: two groups, each with one node of every host.
  const std::vector<std::string> hosts = {"h0", "h0", "h1", "h1", "h2", "h2", "h3", "h3"};
  const auto groups = xor_grouping(hosts, 4);
  ASSERT_EQ(groups.size(), 2u);
  for (const auto& g : groups) {
    ASSERT_EQ(g.size(), 4u);
    std::vector<std::string> seen;
    for (int m : g) seen.push_back(hosts[static_cast<std::size_t>(m)]);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  }
  const auto sizes = [](const std::vector<std::vector<int>>& gs) {
    std::vector<std::size_t> s;
    for (const auto& g : gs) s.push_back(g.size());
    return s;
  };
  const std::vector<std::string> five(5, "x"), three(3, "x"), nine(9, "x"), one(1, "x");
  EXPECT_EQ(sizes(xor_grouping(five, 4)), (std::vector<std::size_t>{3, 2}));
  EXPECT_EQ(sizes(xor_grouping(three, 2)), (std::vector<std::size_t>{3}));  // not 2 + 1
  EXPECT_EQ(sizes(xor_grouping(nine, 4)), (std::vector<std::size_t>{3, 3, 3}));
  EXPECT_EQ(sizes(xor_grouping(one, 4)), (std::vector<std::size_t>{1}));
  std::vector<int> all;
  for (const auto& g : xor_grouping(nine, 4)) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(RedundancyTest, PartnerRebuildsALostNodeThenTheNext) {
  const std::string root = scratch_dir(), name = "ckpt-7";
  // Uneven sizes, one node with an empty file.
  const int64_t sizes[] = {150001, 0, 77777, 20000};
  const Node n = setup(root, name, sizes[rank() % 4]);
  const RedundancySpec spec{.scheme = Redundancy::kPartner, .block_bytes = kBlock};
  protect_here(spec, name, n);
  if (nodes() == 1) {
    // One node: nothing keeps a copy, so a lost file stays lost.
    EXPECT_TRUE(agreed_rebuild(spec, name, n).complete);
    lose(n);
    const RebuildOutcome o = agreed_rebuild(spec, name, n);
    EXPECT_FALSE(o.complete);
    EXPECT_EQ(o.lost_nodes, std::vector<int>{0});
    EXPECT_NE(o.reason.find("one node"), std::string::npos) << o.reason;
    EXPECT_NE(o.reason.find(name), std::string::npos) << o.reason;
    return;
  }
  // The copy lives on its partner, not at home.
  const int kept = layout_.partner_kept_by(rank());
  EXPECT_TRUE(fs::exists(n.red_dir + "/" + name + ".partner-of-node" + std::to_string(kept)));
  const int first = nodes() - 1;
  lose_and_rebuild(spec, name, n, {first});
  // The rebuilt node keeps its partner's copy again: losing the node whose copy it keeps works.
  lose_and_rebuild(spec, name, n, {layout_.partner_kept_by(first)});
  // With the copy rebuilt, two non-adjacent losses at 4 nodes are rebuildable too.
  if (nodes() == 4) lose_and_rebuild(spec, name, n, {0, 2});
  // A node that lost only its redundancy directory: nothing to rebuild, but its duty is restored.
  if (rank() == 0) fs::remove_all(n.red_dir);
  job_.barrier();
  RebuildOutcome o = agreed_rebuild(spec, name, n);
  EXPECT_TRUE(o.complete && o.rebuilt_nodes.empty()) << describe(o);
  EXPECT_TRUE(fs::exists(n.red_dir + "/" + name + ".partner-of-node" + std::to_string(kept)));
  // A damaged file (one byte flipped, same size) is lost like a missing one, and rebuilt.
  const int damaged = 0;  // 150001 bytes
  const std::string good = read_bytes(n.own_file);
  if (rank() == damaged) {
    std::fstream f(n.own_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(77);
    f.put(static_cast<char>(good[77] ^ 1));
  }
  job_.barrier();
  o = agreed_rebuild(spec, name, n);
  EXPECT_TRUE(o.complete) << describe(o);
  EXPECT_EQ(o.rebuilt_nodes, std::vector<int>{damaged});
  EXPECT_TRUE(read_bytes(n.own_file) == good);
  // Records of another scheme vouch for no file (every node counts as lost), and the reason
  // says why.
  o = agreed_rebuild({.scheme = Redundancy::kXor, .xor_group_size = 2}, name, n);
  EXPECT_FALSE(o.complete);
  std::vector<int> everyone(static_cast<std::size_t>(nodes()));
  std::iota(everyone.begin(), everyone.end(), 0);
  EXPECT_EQ(o.lost_nodes, everyone);
  EXPECT_NE(o.reason.find("from another protect, scheme or number of nodes"), std::string::npos)
      << o.reason;
}

// After a rebuild, only the lost node's duty is restored: the copies and metadata files of the
// other nodes are left as they were (same bytes, same files), and the lost node's new metadata
// belongs to the same protect as theirs.
TEST_F(RedundancyTest, PartnerRebuildSendsOnlyTheLostCopyAgain) {
  const std::string root = scratch_dir(), name = "narrow";
  const Node n = setup(root, name, 5000 + 7919 * rank());
  const RedundancySpec spec{.scheme = Redundancy::kPartner, .block_bytes = kBlock};
  protect_here(spec, name, n);
  if (nodes() == 1) return;  // nothing to rebuild from
  const int victim = nodes() - 1, kept = layout_.partner_kept_by(rank());
  const std::string meta = n.red_dir + "/" + name + ".redundancy.json";
  const std::string copy = n.red_dir + "/" + name + ".partner-of-node" + std::to_string(kept);
  const std::string meta_before = read_bytes(meta), copy_before = read_bytes(copy);
  // (EXPECT, not ASSERT: a rank returning early would leave the others waiting in the rebuild.)
  struct stat copy_stat {};
  EXPECT_EQ(::stat(copy.c_str(), &copy_stat), 0);
  lose_and_rebuild(spec, name, n, {victim});
  EXPECT_TRUE(read_bytes(copy) == copy_before) << "node " << rank() << "'s copy differs";
  // The lost node's metadata is written again exactly as the protect wrote it (same protect id,
  // records, host, fields); the others' were not rewritten, and their copies not received again.
  EXPECT_TRUE(read_bytes(meta) == meta_before) << "node " << rank() << ": " << read_bytes(meta);
  if (rank() != victim) {
    struct stat now {};
    EXPECT_EQ(::stat(copy.c_str(), &now), 0);
    EXPECT_EQ(now.st_ino, copy_stat.st_ino) << "node " << rank() << " received its copy again";
    EXPECT_EQ(now.st_mtim.tv_nsec, copy_stat.st_mtim.tv_nsec) << "node " << rank();
  }
  // Every node's metadata names the same protect, the lost node's rewritten one included.
  const nlohmann::json parsed = nlohmann::json::parse(read_bytes(meta), nullptr, false);
  const std::string id = parsed.is_object() ? parsed.value("protect_id", "") : "<unreadable>";
  EXPECT_FALSE(id.empty());
  const auto ids = job_.allgather(id);
  for (const std::string& other : ids) EXPECT_EQ(other, ids[0]);
  // And it is as good as the original: losing the node whose copy the victim now keeps again
  // is rebuilt from it.
  lose_and_rebuild(spec, name, n, {layout_.partner_kept_by(victim)});
}

TEST_F(RedundancyTest, PartnerDamagedCopyIsNotRebuildable) {
  const std::string root = scratch_dir(), name = "damaged";
  const Node n = setup(root, name, 30000 + 1000 * rank());
  const RedundancySpec spec{.scheme = Redundancy::kPartner, .block_bytes = kBlock};
  protect_here(spec, name, n);
  if (nodes() == 1) return;  // covered by the one-node cases
  const int victim = 1 % nodes(), keeper = layout_.partner_of(victim);
  if (rank() == keeper) {
    const std::string copy = n.red_dir + "/" + name + ".partner-of-node" + std::to_string(victim);
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12345);
    f.put('\x5a' ^ node_bytes(victim, 30000 + 1000 * victim)[12345]);
  }
  if (rank() == victim) lose(n);
  job_.barrier();
  const RebuildOutcome o = agreed_rebuild(spec, name, n);
  EXPECT_FALSE(o.complete);
  EXPECT_EQ(o.lost_nodes, std::vector<int>{victim});
  EXPECT_TRUE(o.rebuilt_nodes.empty());
  EXPECT_NE(o.reason.find("node " + std::to_string(victim)), std::string::npos) << o.reason;
  EXPECT_NE(o.reason.find("node " + std::to_string(keeper) + ", which keeps its copy"),
            std::string::npos)
      << o.reason;
  EXPECT_NE(o.reason.find("partner"), std::string::npos) << o.reason;
  // Nothing was written for the lost node.
  EXPECT_FALSE(rank() == victim && fs::exists(n.own_file));
}

TEST_F(RedundancyTest, XorRebuildsOneLossPerGroup) {
  const std::string root = scratch_dir(), name = "xor";
  // Different sizes within a group, one empty file.
  const int64_t sizes[] = {100003, 65536, 0, 4098};
  const Node n = setup(root, name, sizes[rank() % 4]);
  for (int group_size : {3, 4}) {
    if (group_size == 4 && nodes() < 4) continue;
    const RedundancySpec spec{
        .scheme = Redundancy::kXor, .xor_group_size = group_size, .block_bytes = kBlock};
    protect_here(spec, name, n);
    if (nodes() == 1) {
      lose(n);
      const RebuildOutcome o = agreed_rebuild(spec, name, n);
      EXPECT_FALSE(o.complete);
      EXPECT_EQ(o.lost_nodes, std::vector<int>{0});
      write_bytes(n.own_file, node_bytes(0, sizes[0]));
      continue;
    }
    // Parity is 1/(members - 1) of the longest stream of the group.
    const auto groups = layout_.xor_groups(group_size);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const auto& members = groups[g];
      if (std::find(members.begin(), members.end(), rank()) == members.end()) continue;
      int64_t longest = 0;
      for (int m : members) longest = std::max(longest, sizes[m % 4]);
      const auto slices = static_cast<int64_t>(members.size()) - 1;
      const std::string parity =
          n.red_dir + "/" + name + ".xor-g" + std::to_string(g) + "-n" + std::to_string(rank());
      EXPECT_EQ(static_cast<int64_t>(fs::file_size(parity)), (longest + slices - 1) / slices);
    }
    lose_and_rebuild(spec, name, n, {nodes() - 1});
    lose_and_rebuild(spec, name, n, {0});
    if (nodes() == 4 && group_size == 3) {
      // Groups {0, 2} and {1, 3}: one loss in each.
      ASSERT_EQ(groups.size(), 2u);
      lose_and_rebuild(spec, name, n, {0, 1});
    }
    remove_redundancy(name, n.red_dir);
  }
}

TEST_F(RedundancyTest, XorTwoLossesInOneGroupAreNamed) {
  const std::string root = scratch_dir(), name = "xor-two";
  const Node n = setup(root, name, 5000 + 333 * rank());
  if (nodes() < 2) return;
  const RedundancySpec spec{.scheme = Redundancy::kXor, .xor_group_size = 4, .block_bytes = kBlock};
  protect_here(spec, name, n);
  // The first two members of the first group (the only group for 2-4 nodes).
  const std::vector<int> group = layout_.xor_groups(4)[0];
  const std::vector<int> victims = {group[0], group[1]};
  const bool victim = rank() == victims[0] || rank() == victims[1];
  if (victim) lose(n);
  job_.barrier();
  const RebuildOutcome o = agreed_rebuild(spec, name, n);
  EXPECT_FALSE(o.complete);
  EXPECT_EQ(o.lost_nodes, victims);
  EXPECT_TRUE(o.rebuilt_nodes.empty());
  EXPECT_NE(o.reason.find("checkpoint 'xor-two' (redundancy xor"), std::string::npos) << o.reason;
  // With a group of two both records went with them; otherwise a survivor's record names them.
  const std::string first = "node " + std::to_string(victims[0]) + " lost its file";
  const std::string why = group.size() == 2 ? first + " and no node has a record of it"
                                            : first + ", and so did node " +
                                                  std::to_string(victims[1]) + " of its XOR group";
  EXPECT_NE(o.reason.find(why), std::string::npos) << o.reason;
  EXPECT_FALSE(fs::exists(n.own_file) && victim);
}

// A 64 MiB file with two small extents: only the extents travel and are stored.
TEST_F(RedundancyTest, SparseFilesStaySparse) {
  const std::string root = scratch_dir();
  constexpr int64_t kLogical = int64_t{64} << 20;
  const Node base = node_dirs(root, rank(), "sparse");
  fs::create_directories(base.l1_dir);
  const std::string a = node_bytes(rank(), 4096, 1), b = node_bytes(rank(), 8192, 2);
  {
    const int fd = ::open(base.own_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, kLogical), 0);
    EXPECT_EQ(::pwrite(fd, a.data(), a.size(), int64_t{1} << 20), static_cast<ssize_t>(a.size()));
    EXPECT_EQ(::pwrite(fd, b.data(), b.size(), int64_t{40} << 20), static_cast<ssize_t>(b.size()));
    ::close(fd);
  }
  const auto allocated = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_blocks) * 512 : -1;
  };
  const auto dir_allocated = [&](const std::string& dir) {
    int64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir)) total += allocated(e.path().string());
    return total;
  };
  // The file's content without reading 64 MiB of holes: its data extents (SEEK_DATA/SEEK_HOLE),
  // their bytes and its size. Holes read as zeros, so equal snapshots mean equal content.
  const auto sparse_snapshot = [](const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return std::string("<missing>");
    std::string text = "size " + std::to_string(::lseek(fd, 0, SEEK_END));
    for (off_t at = 0;;) {
      const off_t data = ::lseek(fd, at, SEEK_DATA);
      if (data < 0) break;
      const off_t hole = ::lseek(fd, data, SEEK_HOLE);
      std::string bytes(static_cast<std::size_t>(hole - data), '\0');
      if (::pread(fd, bytes.data(), bytes.size(), data) != static_cast<ssize_t>(bytes.size()))
        text += " short read";
      text += " [" + std::to_string(data) + "," + std::to_string(hole) + ") " + bytes;
      at = hole;
    }
    ::close(fd);
    return text;
  };
  const std::string before = sparse_snapshot(base.own_file);
  EXPECT_NE(before.find("[1048576,1052672)"), std::string::npos);
  for (Redundancy scheme : {Redundancy::kPartner, Redundancy::kXor}) {
    const RedundancySpec spec{.scheme = scheme, .xor_group_size = 3};
    protect_here(spec, "sparse", base);
    // The redundancy directory holds the extents (and metadata), not 64 MiB.
    EXPECT_LT(dir_allocated(base.red_dir), 256 * 1024) << "node " << rank();
    if (nodes() == 1) break;
    lose_and_rebuild(spec, "sparse", base, {nodes() - 1}, sparse_snapshot);
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(base.own_file)), kLogical);
    EXPECT_LT(allocated(base.own_file), 256 * 1024);
    EXPECT_EQ(sparse_snapshot(base.own_file), before);
    // Zeros written into a hole leave the content as recorded: still valid, nothing rebuilt.
    // A non-zero byte there changes it: the file counts as lost and is rebuilt with the hole.
    for (const char byte : {'\0', '\x7f'}) {
      if (rank() == 0) {
        const int fd = ::open(base.own_file.c_str(), O_WRONLY);
        const std::string block(4096, byte);
        EXPECT_EQ(::pwrite(fd, block.data(), block.size(), int64_t{20} << 20), 4096);
        ::close(fd);
      }
      job_.barrier();
      const RebuildOutcome o = agreed_rebuild(spec, "sparse", base);
      EXPECT_TRUE(o.complete) << describe(o);
      EXPECT_EQ(o.rebuilt_nodes, byte == 0 ? std::vector<int>{} : std::vector<int>{0});
      if (byte != 0) {
        EXPECT_EQ(sparse_snapshot(base.own_file), before);
      }
    }
    remove_redundancy("sparse", base.red_dir);
  }
}

TEST_F(RedundancyTest, OneNodeOfManyRanks) {
  // Every rank on one node: the leader alone holds files, the others only agree.
  const NodeLayout shared = make_node_layout(job_, false);
  const std::string root = scratch_dir(), name = "one";
  const Node n = node_dirs(root, 0, name);
  if (shared.is_leader) write_bytes(n.own_file, node_bytes(0, 1000));
  for (Redundancy scheme : {Redundancy::kNone, Redundancy::kPartner, Redundancy::kXor}) {
    const RedundancySpec spec{.scheme = scheme};
    protect(job_, shared, spec, name, n.own_file, n.red_dir);
    RebuildOutcome o = rebuild(job_, shared, spec, name, n.own_file, n.red_dir);
    EXPECT_TRUE(o.complete) << describe(o);
    if (shared.is_leader) {
      // Only the metadata: no copy, no parity.
      EXPECT_EQ(std::distance(fs::directory_iterator(n.red_dir), fs::directory_iterator()), 1);
      fs::remove(n.own_file);
    }
    job_.barrier();
    o = rebuild(job_, shared, spec, name, n.own_file, n.red_dir);
    const auto all = job_.allgather(describe(o));
    for (const auto& t : all) EXPECT_EQ(t, all[0]);
    EXPECT_FALSE(o.complete);
    EXPECT_EQ(o.lost_nodes, std::vector<int>{0});
    EXPECT_NE(o.reason.find("node 0 lost its file"), std::string::npos) << o.reason;
    if (shared.is_leader) write_bytes(n.own_file, node_bytes(0, 1000));
    job_.barrier();
  }
}

// Nodes of two ranks (the last node of an odd job has one): only leaders hold files, the other
// ranks take part in every agreement of every round.
TEST_F(RedundancyTest, NodesOfSeveralRanks) {
  const NodeLayout pairs = make_node_layout_by_color(job_, rank() / 2);
  const int count = (job_.size() + 1) / 2;
  EXPECT_EQ(pairs.nodes, count);
  EXPECT_EQ(pairs.node_index, rank() / 2);
  EXPECT_EQ(pairs.is_leader, rank() % 2 == 0);
  EXPECT_EQ(pairs.node_ranks[static_cast<std::size_t>(rank() / 2)][0], rank() - rank() % 2);
  const std::string root = scratch_dir(), name = "pairs";
  // Non-leaders pass paths that do not exist: they must not be touched.
  const Node n = pairs.is_leader ? node_dirs(root, pairs.node_index, name)
                                 : Node{"", root + "/none/file", root + "/none/red"};
  const int64_t size = 50000 + 7777 * pairs.node_index;
  if (pairs.is_leader) write_bytes(n.own_file, node_bytes(pairs.node_index, size));
  for (Redundancy scheme : {Redundancy::kPartner, Redundancy::kXor}) {
    const RedundancySpec spec{.scheme = scheme, .xor_group_size = 2, .block_bytes = kBlock};
    protect(job_, pairs, spec, name, n.own_file, n.red_dir);
    const int victim = count - 1;
    if (pairs.is_leader && pairs.node_index == victim) lose(n);
    job_.barrier();
    const RebuildOutcome o = rebuild(job_, pairs, spec, name, n.own_file, n.red_dir);
    const auto all = job_.allgather(describe(o));
    for (const auto& t : all) EXPECT_EQ(t, all[0]);
    EXPECT_EQ(o.complete, count > 1) << describe(o);
    if (count > 1) {
      EXPECT_EQ(o.rebuilt_nodes, std::vector<int>{victim});
    }
    if (pairs.is_leader && count > 1) {
      EXPECT_TRUE(read_bytes(n.own_file) == node_bytes(pairs.node_index, size));
    }
    if (pairs.is_leader && count == 1) write_bytes(n.own_file, node_bytes(0, size));
    job_.barrier();
  }
  EXPECT_FALSE(fs::exists(root + "/none"));
}

TEST_F(RedundancyTest, FailedRebuildIsAgreed) {
  const std::string root = scratch_dir(), name = "stuck";
  Node n = setup(root, name, 9000 + 10 * rank());
  if (nodes() < 2) return;
  const RedundancySpec spec{.scheme = Redundancy::kPartner, .block_bytes = kBlock};
  protect_here(spec, name, n);
  const int victim = nodes() - 1;
  if (rank() == victim) {
    lose(n);
    // Its level-1 directory cannot be made again: a regular file is in the way.
    fs::remove_all(n.l1_dir);
    write_bytes(root + "/node" + std::to_string(victim) + "/l1", "x");
  }
  job_.barrier();
  expect_same_error_everywhere(
      [&] { (void)rebuild(job_, layout_, spec, name, n.own_file, n.red_dir); }, ErrorCode::kIo,
      {"node " + std::to_string(victim), "checkpoint " + name, "rebuild"});
  if (rank() == victim) {
    EXPECT_FALSE(fs::exists(n.own_file + ".tmp"));
  }
}

TEST_F(RedundancyTest, FailedProtectIsAgreedAndLeavesNothing) {
  const std::string root = scratch_dir(), name = "fails";
  Node n = setup(root, name, 12000 + rank());
  const int bad = nodes() - 1;
  if (rank() == bad) {
    // Root cannot be kept out by permissions: a directory under a regular file cannot be made.
    write_bytes(root + "/blocker", "x");
    n.red_dir = root + "/blocker/red";
  }
  job_.barrier();
  for (Redundancy scheme : {Redundancy::kPartner, Redundancy::kXor}) {
    const RedundancySpec spec{.scheme = scheme, .xor_group_size = 2, .block_bytes = kBlock};
    expect_same_error_everywhere([&] { protect_here(spec, name, n); }, ErrorCode::kIo,
                                 {"node " + std::to_string(bad), "job rank " + std::to_string(bad),
                                  "checkpoint " + name, "protect", "blocker"});
    if (rank() != bad) {
      EXPECT_TRUE(fs::is_empty(n.red_dir)) << "leftovers on node " << rank();
    }
  }
  // A missing level-1 file on one node: the same, and earlier redundancy of it is gone too.
  if (rank() == bad) n.red_dir = node_dirs(root, rank(), name).red_dir;
  const RedundancySpec spec{.scheme = Redundancy::kPartner, .block_bytes = kBlock};
  protect_here(spec, name, n);
  if (rank() == 0) fs::remove(n.own_file);
  job_.barrier();
  expect_same_error_everywhere([&] { protect_here(spec, name, n); }, ErrorCode::kNotFound,
                               {"node 0", "job rank 0", "checkpoint " + name});
  EXPECT_TRUE(fs::is_empty(n.red_dir)) << "leftovers on node " << rank();
}

}  // namespace
}  // namespace cairn::detail
