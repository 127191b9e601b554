// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cairn/comm/session.hpp"
#include "cairn/core/error.hpp"
#include "cairn/optim/optimizer.hpp"

namespace cairn {
namespace {

// Global row-major index of every local element, in local storage order.
std::vector<int64_t> global_indices(const Variable& variable) {
  std::vector<int64_t> indices;
  for (const Box& box : variable.local_boxes()) {
    const int64_t n = box.volume();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rest = i, index = 0, stride = 1;
      for (std::size_t d = box.rank(); d-- > 0;) {
        index += (box.offset[d] + rest % box.count[d]) * stride;
        rest /= box.count[d];
        stride *= variable.shape()[d];
      }
      indices.push_back(index);
    }
  }
  return indices;
}

double initial_weight(int64_t index) {
  return 0.5 + 0.01 * static_cast<double>(index % 37);
}
double gradient_at(int step, int64_t index) {
  return std::sin(0.7 * step + 0.13 * static_cast<double>(index)) * (1 + index % 3);
}

template <class T>
std::shared_ptr<Variable> make_weights(const Session& session, const Shape& shape,
                                       const Layout& layout) {
  auto variable = Variable::create<T>(session, shape, layout);
  const auto indices = global_indices(*variable);
  auto values = variable->template local_all<T>();
  for (std::size_t i = 0; i < indices.size(); ++i)
    values[i] = static_cast<T>(initial_weight(indices[i]));
  return variable;
}

std::vector<double> gradients(const Variable& variable, int step) {
  std::vector<double> g;
  for (int64_t index : global_indices(variable)) g.push_back(gradient_at(step, index));
  return g;
}

// Scalar reference implementations, written from the formulas rather than from the library.
struct SgdReference {
  double w, v = 0;
  void step(double g, const SGD::Options& o) {
    v = o.momentum * v - o.learning_rate * g;
    w += o.nesterov ? o.momentum * v - o.learning_rate * g : v;
  }
};

struct AdamReference {
  double w, m = 0, v = 0;
  void step(double g, int t, const Adam::Options& o) {
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double lr_t =
        o.learning_rate * std::sqrt(1 - std::pow(o.beta2, t)) / (1 - std::pow(o.beta1, t));
    w -= lr_t * m / (std::sqrt(v) + o.epsilon);
  }
};

constexpr int kSteps = 5;

template <class T>
void check_sgd(const SGD::Options& options, const Layout& layout, double tolerance) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<T>(session, {13, 3}, layout);
  SGD sgd(options);
  const auto indices = global_indices(*weights);
  std::vector<SgdReference> expected;
  for (int64_t index : indices) expected.push_back({initial_weight(index)});
  for (int step = 0; step < kSteps; ++step) {
    sgd.apply(weights, gradients(*weights, step));
    for (std::size_t i = 0; i < indices.size(); ++i)
      expected[i].step(gradient_at(step, indices[i]), options);
  }
  const auto actual = weights->template local_all<T>();
  for (std::size_t i = 0; i < indices.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i].w, tolerance) << "element " << indices[i];
  if (options.momentum != 0) {
    const auto velocity = sgd.get_slot(*weights, "momentum");
    ASSERT_NE(velocity, nullptr);
    for (std::size_t i = 0; i < indices.size(); ++i)
      EXPECT_NEAR(velocity->template local_all<T>()[i], expected[i].v, tolerance);
  }
}

TEST(SGD, MomentumMatchesTheReference) {
  check_sgd<double>({.learning_rate = 0.1, .momentum = 0.9}, Layout::block(), 1e-12);
  check_sgd<float>({.learning_rate = 0.1, .momentum = 0.9}, Layout::block(1), 1e-5);
}

TEST(SGD, NesterovMatchesTheReference) {
  check_sgd<double>({.learning_rate = 0.05, .momentum = 0.8, .nesterov = true},
                    Layout::replicated(), 1e-12);
  check_sgd<float>({.learning_rate = 0.05, .momentum = 0.8, .nesterov = true}, Layout::block(),
                   1e-5);
}

TEST(SGD, PlainSgdKeepsNoSlot) {
  check_sgd<double>({.learning_rate = 0.1, .momentum = 0.0}, Layout::block(), 1e-12);
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<double>(session, {4}, Layout::replicated());
  SGD sgd({.learning_rate = 0.1, .momentum = 0.0});
  sgd.apply(weights, gradients(*weights, 0));
  EXPECT_TRUE(sgd.slots().empty());
}

TEST(SGD, RejectsWrongGradientsAndTypes) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<float>(session, {6, 2}, Layout::replicated());
  SGD sgd({});
  std::vector<double> too_short(11, 1.0);
  try {
    sgd.apply(weights, too_short);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  auto integers = Variable::create<int32_t>(session, {3});
  EXPECT_THROW(sgd.apply(integers, std::vector<double>(3, 1.0)), Error);
  EXPECT_THROW(sgd.apply(nullptr, {}), Error);
}

template <class T>
void check_adam(const Adam::Options& options, const Layout& layout, double tolerance) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<T>(session, {11, 4}, layout);
  Adam adam(session, options);
  const auto indices = global_indices(*weights);
  std::vector<AdamReference> expected;
  for (int64_t index : indices) expected.push_back({initial_weight(index)});
  for (int step = 1; step <= kSteps; ++step) {
    adam.begin_step();
    EXPECT_EQ(adam.iterations(), step);
    adam.apply(weights, gradients(*weights, step));
    for (std::size_t i = 0; i < indices.size(); ++i)
      expected[i].step(gradient_at(step, indices[i]), step, options);
  }
  const auto actual = weights->template local_all<T>();
  const auto m = adam.get_slot(*weights, "m");
  const auto v = adam.get_slot(*weights, "v");
  ASSERT_NE(m, nullptr);
  ASSERT_NE(v, nullptr);
  for (std::size_t i = 0; i < indices.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i].w, tolerance) << "element " << indices[i];
    EXPECT_NEAR(m->template local_all<T>()[i], expected[i].m, tolerance);
    EXPECT_NEAR(v->template local_all<T>()[i], expected[i].v, tolerance);
  }
}

TEST(Adam, MatchesTheReference) {
  check_adam<double>({}, Layout::block(), 1e-12);
  check_adam<double>({.learning_rate = 0.01, .beta1 = 0.8, .beta2 = 0.99, .epsilon = 1e-3},
                     Layout::block(1), 1e-12);
  check_adam<float>({.learning_rate = 0.01}, Layout::block(), 1e-5);
}

TEST(Adam, FirstStepMovesEachWeightByAboutTheLearningRate) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<double>(session, {8}, Layout::replicated());
  Adam adam(session, {.learning_rate = 0.1, .epsilon = 1e-12});
  adam.begin_step();
  const auto before =
      std::vector<double>(weights->local_all<double>().begin(), weights->local_all<double>().end());
  const auto g = gradients(*weights, 3);
  adam.apply(weights, g);
  for (std::size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(before[i] - weights->local_all<double>()[i], 0.1 * (g[i] > 0 ? 1 : -1), 1e-6);
}

TEST(Adam, IterationsIsATrackedReplicatedScalar) {
  const Session session(MPI_COMM_WORLD);
  Adam adam(session, {});
  const auto counter = std::dynamic_pointer_cast<Variable>(adam.child("iterations"));
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->dtype(), DType::kI64);
  EXPECT_TRUE(counter->shape().empty());
  EXPECT_EQ(counter->layout().kind(), Layout::Kind::kReplicated);
  EXPECT_EQ(adam.iterations(), 0);
  adam.begin_step();
  adam.begin_step();
  EXPECT_EQ(counter->local<int64_t>()[0], 2);
  // A restore writes the counter's storage; the optimizer must see it.
  counter->local<int64_t>()[0] = 41;
  EXPECT_EQ(adam.iterations(), 41);
  EXPECT_STREQ(adam.kind(), "optimizer");
}

TEST(Adam, ApplyBeforeBeginStepIsAnError) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<double>(session, {4}, Layout::replicated());
  Adam adam(session, {});
  EXPECT_THROW(adam.apply(weights, gradients(*weights, 0)), Error);
  EXPECT_THROW(Adam(session, {.beta1 = 1.0}), Error);
}

// Records slots announced to the checkpoint layer.
class SlotHook : public RestoreHook {
 public:
  void on_child_attached(Trackable&, int64_t, const std::string&,
                         const std::shared_ptr<Trackable>&) override {}
  void on_slot_added(Trackable& optimizer, int64_t node, const std::shared_ptr<Trackable>& variable,
                     const std::string& slot_name,
                     const std::shared_ptr<Trackable>& slot) override {
    optimizers.push_back(&optimizer);
    nodes.push_back(node);
    variables.push_back(variable);
    names.push_back(slot_name);
    slots.push_back(slot);
  }
  std::vector<Trackable*> optimizers;
  std::vector<int64_t> nodes;
  std::vector<std::shared_ptr<Trackable>> variables;
  std::vector<std::string> names;
  std::vector<std::shared_ptr<Trackable>> slots;
};

TEST(Optimizer, SlotsAreShapedAndShardedLikeTheirVariable) {
  const Session session(MPI_COMM_WORLD);
  const int rows = 2 * session.size() + 1;
  for (const Layout& layout : {Layout::block(0), Layout::block(1), Layout::replicated()}) {
    auto weights = make_weights<float>(session, {rows, 5}, layout);
    SGD sgd({});
    EXPECT_EQ(sgd.get_slot(*weights, "momentum"), nullptr);
    const auto slot = sgd.add_slot(weights, "momentum");
    EXPECT_EQ(slot->dtype(), weights->dtype());
    EXPECT_EQ(slot->shape(), weights->shape());
    EXPECT_EQ(slot->layout().describe(), weights->layout().describe());
    EXPECT_EQ(slot->local_boxes(), weights->local_boxes());
    EXPECT_EQ(slot->local_elements(), weights->local_elements());
    for (float value : slot->local_all<float>()) EXPECT_EQ(value, 0.0f);
    EXPECT_EQ(sgd.add_slot(weights, "momentum"), slot);  // created once
    EXPECT_EQ(sgd.get_slot(*weights, "momentum"), slot);
    EXPECT_EQ(sgd.slots().size(), 1u);
  }
}

TEST(Optimizer, SlotsAreKeyedByVariableAndName) {
  const Session session(MPI_COMM_WORLD);
  auto a = make_weights<double>(session, {3}, Layout::replicated());
  auto b = make_weights<double>(session, {3}, Layout::replicated());
  Adam adam(session, {});
  const auto a_m = adam.add_slot(a, "m");
  const auto b_m = adam.add_slot(b, "m");
  const auto a_v = adam.add_slot(a, "v");
  EXPECT_NE(a_m, b_m);
  EXPECT_NE(a_m, a_v);
  EXPECT_EQ(adam.get_slot(*b, "m"), b_m);
  EXPECT_EQ(adam.get_slot(*b, "v"), nullptr);
  ASSERT_EQ(adam.slots().size(), 3u);
  EXPECT_EQ(adam.slots()[2].name, "v");
  EXPECT_EQ(adam.slots()[2].variable.lock(), a);
  EXPECT_THROW(adam.add_slot(nullptr, "m"), Error);
}

TEST(Optimizer, NewSlotsAreAnnouncedToTheRestoreHook) {
  const Session session(MPI_COMM_WORLD);
  auto weights = make_weights<double>(session, {6}, Layout::block());
  auto hook = std::make_shared<SlotHook>();
  SGD sgd({});
  sgd.set_restore_binding({hook, 5});
  const auto slot = sgd.add_slot(weights, "momentum");
  sgd.add_slot(weights, "momentum");  // existing: not announced again
  ASSERT_EQ(hook->names.size(), 1u);
  EXPECT_EQ(hook->optimizers[0], &sgd);
  EXPECT_EQ(hook->nodes[0], 5);
  EXPECT_EQ(hook->variables[0], weights);
  EXPECT_EQ(hook->names[0], "momentum");
  EXPECT_EQ(hook->slots[0], slot);
}

}  // namespace
}  // namespace cairn
