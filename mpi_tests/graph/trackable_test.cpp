// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "cairn/graph/trackable.hpp"

namespace cairn {
namespace {

// Records what the checkpoint layer would be told.
class RecordingHook : public RestoreHook {
 public:
  struct Attached {
    Trackable* parent;
    int64_t node;
    std::string name;
    std::shared_ptr<Trackable> child;
  };
  void on_child_attached(Trackable& parent, int64_t parent_node, const std::string& name,
                         const std::shared_ptr<Trackable>& child) override {
    attached.push_back({&parent, parent_node, name, child});
  }
  void on_slot_added(Trackable&, int64_t, const std::shared_ptr<Trackable>&, const std::string&,
                     const std::shared_ptr<Trackable>&) override {
    ++slots;
  }
  std::vector<Attached> attached;
  int slots = 0;
};

std::vector<std::string> edge_names(const Trackable& node) {
  std::vector<std::string> names;
  for (const auto& edge : node.edges()) names.push_back(edge.name);
  return names;
}

TEST(Trackable, TracksChildrenInOrder) {
  auto root = std::make_shared<Module>();
  auto a = std::make_shared<Module>();
  auto b = std::make_shared<Module>();
  root->track("a", a);
  EXPECT_EQ(root->add("b", b), b);
  EXPECT_EQ(edge_names(*root), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(root->child("a"), a);
  EXPECT_EQ(root->child("b"), b);
  EXPECT_EQ(root->child("c"), nullptr);
  EXPECT_STREQ(root->kind(), "node");
}

TEST(Trackable, TrackingTheSameNameReplacesTheEdgeInPlace) {
  auto root = std::make_shared<Module>();
  auto first = std::make_shared<Module>();
  auto second = std::make_shared<Module>();
  root->track("x", first);
  root->track("y", std::make_shared<Module>());
  root->track("x", second);
  EXPECT_EQ(edge_names(*root), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(root->child("x"), second);
  EXPECT_EQ(first.use_count(), 1);  // the replaced child is no longer referenced
}

TEST(Trackable, ManyChildrenKeepTheirOrderAndNames) {
  auto root = std::make_shared<Module>();
  std::vector<std::shared_ptr<Module>> children;
  for (int i = 0; i < 20000; ++i) {
    children.push_back(std::make_shared<Module>());
    root->track("v" + std::to_string(i), children.back());
  }
  auto replacement = std::make_shared<Module>();
  root->track("v123", replacement);
  ASSERT_EQ(root->edges().size(), 20000u);
  EXPECT_EQ(root->edges()[123].name, "v123");
  EXPECT_EQ(root->edges()[123].strong, replacement);
  EXPECT_EQ(root->child("v123"), replacement);
  EXPECT_EQ(root->child("v19999"), children.back());
  EXPECT_EQ(root->edges()[19999].name, "v19999");
}

TEST(Trackable, WeakEdgesDoNotKeepChildrenAlive) {
  auto parent = std::make_shared<Module>();
  auto child = std::make_shared<Module>();
  child->track_weak("parent", parent);  // a back edge closing the cycle
  parent->track("child", child);
  EXPECT_EQ(child->child("parent"), parent);
  EXPECT_FALSE(child->edges()[0].strong);
  EXPECT_EQ(parent.use_count(), 1);

  const std::weak_ptr<Trackable> watch = parent;
  parent.reset();
  EXPECT_TRUE(watch.expired());  // the cycle did not leak
  EXPECT_EQ(child->child("parent"), nullptr);
  EXPECT_EQ(child->edges().size(), 1u);
}

TEST(Trackable, WeakAndStrongEdgesReplaceEachOther) {
  auto root = std::make_shared<Module>();
  auto child = std::make_shared<Module>();
  root->track("c", child);
  root->track_weak("c", child);
  ASSERT_EQ(root->edges().size(), 1u);
  EXPECT_FALSE(root->edges()[0].strong);
  root->track("c", child);
  ASSERT_EQ(root->edges().size(), 1u);
  EXPECT_EQ(root->edges()[0].strong, child);
}

TEST(Trackable, RejectsEmptyNamesAndNullChildren) {
  auto root = std::make_shared<Module>();
  try {
    root->track("", std::make_shared<Module>());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THROW(root->track("x", nullptr), Error);
  EXPECT_THROW(root->track_weak("x", nullptr), Error);
  EXPECT_THROW(root->track_weak("", std::make_shared<Module>()), Error);
  EXPECT_TRUE(root->edges().empty());
}

TEST(Trackable, BoundObjectsReportAttachedChildren) {
  auto root = std::make_shared<Module>();
  auto early = std::make_shared<Module>();
  root->track("early", early);  // before any restore: nothing to report

  auto hook = std::make_shared<RecordingHook>();
  root->set_restore_binding({hook, 17});
  EXPECT_EQ(root->restore_binding().node, 17);
  auto late = std::make_shared<Module>();
  root->track("late", late);
  auto back = std::make_shared<Module>();
  root->track_weak("back", back);

  ASSERT_EQ(hook->attached.size(), 2u);
  EXPECT_EQ(hook->attached[0].parent, root.get());
  EXPECT_EQ(hook->attached[0].node, 17);
  EXPECT_EQ(hook->attached[0].name, "late");
  EXPECT_EQ(hook->attached[0].child, late);
  EXPECT_EQ(hook->attached[1].name, "back");
  EXPECT_EQ(hook->attached[1].child, back);
  EXPECT_EQ(hook->slots, 0);
}

// A hook that drops the parent's binding while it is being called, as a restore may.
class RebindingHook : public RestoreHook {
 public:
  void on_child_attached(Trackable& parent, int64_t, const std::string&,
                         const std::shared_ptr<Trackable>&) override {
    parent.set_restore_binding({});
    ++calls;
  }
  void on_slot_added(Trackable&, int64_t, const std::shared_ptr<Trackable>&, const std::string&,
                     const std::shared_ptr<Trackable>&) override {}
  int calls = 0;
};

TEST(Trackable, HookMayRebindTheParent) {
  auto root = std::make_shared<Module>();
  auto hook = std::make_shared<RebindingHook>();
  root->set_restore_binding({hook, 1});
  hook.reset();  // the binding holds the only reference
  root->track("x", std::make_shared<Module>());
  EXPECT_EQ(root->restore_binding().hook, nullptr);
  EXPECT_EQ(root->restore_binding().node, -1);
}

}  // namespace
}  // namespace cairn
