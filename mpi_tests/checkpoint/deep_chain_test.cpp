// SPDX-License-Identifier: Apache-2.0
// A chain of 10,000 nested modules with one small variable at the end. Format 2.0 stores each
// node's parent edge rather than its path (1.x stored every node's full path, which grew with the
// depth squared), so the table grows linearly with the depth; and such a graph saves and restores.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdio>
#include <memory>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::scratch_dir;
using testing::session;

struct Chain {
  std::shared_ptr<Module> root = std::make_shared<Module>();
  std::shared_ptr<Variable> leaf;
  std::vector<std::shared_ptr<Module>> links;  // destroyed in order, not recursively
  ~Chain() {
    root.reset();
    for (auto& m : links) m.reset();
  }
};

// Each module holds the next as its only child "d"; the last one holds "v".
std::unique_ptr<Chain> make_chain(int depth, float value) {
  auto c = std::make_unique<Chain>();
  c->links.push_back(c->root);
  for (int i = 1; i < depth; ++i) {
    auto next = std::make_shared<Module>();
    c->links.back()->track("d", next);
    c->links.push_back(next);
  }
  c->leaf = Variable::create<float>(session(), {4}, Layout::replicated());
  for (float& x : c->leaf->local<float>()) x = value;
  c->links.back()->track("v", c->leaf);
  return c;
}

int64_t table_bytes(const std::string& path) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, "/cairn/table", H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  const int64_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(file);
  return n;
}

TEST(DeepChain, TheTableGrowsLinearlyWithTheDepthAndTheChainRestores) {
  const std::string dir = scratch_dir();
  int64_t bytes[2] = {0, 0};
  const int depths[2] = {5000, 10000};
  for (int i = 0; i < 2; ++i) {
    const std::string path = dir + "/chain-" + std::to_string(depths[i]) + ".h5";
    {
      auto saved = make_chain(depths[i], 1.5f + static_cast<float>(i));
      Checkpoint(session(), {{"c", saved->root}}).write(path);
    }
    bytes[i] = table_bytes(path);
    auto restored = make_chain(depths[i], 0);
    Checkpoint ckpt(session(), {{"c", restored->root}});
    ckpt.read(path).assert_consumed();
    for (float x : restored->leaf->local<float>()) EXPECT_EQ(x, 1.5f + static_cast<float>(i));
  }
  std::printf("table bytes: depth 5000 %lld, depth 10000 %lld\n", static_cast<long long>(bytes[0]),
              static_cast<long long>(bytes[1]));
  // At least a node and an edge per level; twice the depth, well under twice plus the constant.
  EXPECT_GT(bytes[0], 5000 * (16 + 16));
  EXPECT_LT(static_cast<double>(bytes[1]) / static_cast<double>(bytes[0]), 2.2)
      << bytes[0] << " and " << bytes[1] << " bytes";
}

}  // namespace
}  // namespace cairn
