// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>

#include "cairn/core/error.hpp"
#include "cairn/state/boost_state.hpp"
#include "cairn/state/state.hpp"

namespace cairn {
namespace {

class TextState : public StateObject {
 public:
  TextState() : StateObject(StateScope::kPerRank) {}
  std::string save_bytes() const override { return text; }
  void load_bytes(std::string_view bytes) override { text = bytes; }
  std::string text;
};

TEST(StateObject, RescaledLoadKeepsTheSameRanksValue) {
  TextState state;
  EXPECT_STREQ(state.kind(), "state");
  EXPECT_EQ(state.scope(), StateScope::kPerRank);
  const std::vector<std::string> saved = {"zero", "one", "two"};
  EXPECT_TRUE(state.load_rescaled(saved, 1));
  EXPECT_EQ(state.text, "one");
  EXPECT_TRUE(state.load_rescaled(saved, 2));
  EXPECT_EQ(state.text, "two");
  // A rank the saving job did not have keeps its value and reports no match.
  EXPECT_FALSE(state.load_rescaled(saved, 3));
  EXPECT_EQ(state.text, "two");
  EXPECT_FALSE(state.load_rescaled({}, 0));
}

struct LoaderPosition {
  int64_t epoch = 0;
  std::string shard;
  std::map<std::string, int> seen;
  template <class Archive>
  void serialize(Archive& archive, unsigned /*version*/) {
    archive& epoch& shard& seen;
  }
};

TEST(BoostState, RoundTripsThroughBytes) {
  State<LoaderPosition> saved(StateScope::kGlobal);
  saved.value() = {7, "train-00042", {{"a", 1}, {"b", 2}}};
  EXPECT_EQ(saved.scope(), StateScope::kGlobal);
  const std::string bytes = saved.save_bytes();

  State<LoaderPosition> restored;
  restored.load_bytes(bytes);
  EXPECT_EQ(restored.value().epoch, 7);
  EXPECT_EQ(restored.value().shard, "train-00042");
  EXPECT_EQ(restored.value().seen, saved.value().seen);
}

TEST(BoostState, GarbageIsASerializationErrorAndLeavesTheValue) {
  State<LoaderPosition> state;
  state.value().epoch = 3;
  const std::string bytes = state.save_bytes();
  try {
    state.load_bytes(bytes.substr(0, bytes.size() / 2));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSerialization);
  }
  EXPECT_EQ(state.value().epoch, 3);
}

}  // namespace
}  // namespace cairn
