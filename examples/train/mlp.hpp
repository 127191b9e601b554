// SPDX-License-Identifier: Apache-2.0
#pragma once
// A three-layer perceptron (16 -> H -> H -> 1, tanh) whose weights are replicated on every rank,
// trained data-parallel: gradients are summed with MPI_Allreduce, then each rank updates the rows
// whose Adam moments it owns (ZeRO stage 1) and the updated rows are all-gathered.
#include <memory>
#include <vector>

#include "cairn/cairn.hpp"
#include "synthetic_data.hpp"

namespace train {

struct Parameter {
  std::shared_ptr<cairn::Variable> value;  // replicated
  std::shared_ptr<cairn::Variable> m;      // block-sharded along rows
  std::shared_ptr<cairn::Variable> v;
  int64_t rows = 0;
  int64_t cols = 1;
};

class Mlp {
 public:
  Mlp(const cairn::Session& session, int hidden, uint64_t seed);
  std::shared_ptr<cairn::Module> module() const { return module_; }
  std::shared_ptr<cairn::Adam> optimizer() const { return adam_; }
  /// Collective. One step on the global batch whose local part is `samples`; returns the global
  /// mean loss before the update.
  double step(const Dataset& data, const std::vector<int64_t>& samples, int global_batch);
  /// Collective. A digest of all weights, moments and the step count that does not depend on how
  /// the moments are sharded (they are gathered in global order).
  uint64_t digest() const;
  int64_t parameter_bytes() const;

 private:
  void forward_backward(const Dataset& data, const std::vector<int64_t>& samples, int global_batch,
                        std::vector<float>& grads, double& loss_sum) const;
  void apply_adam(const std::vector<float>& grads);

  const cairn::Session* session_;
  int hidden_;
  std::shared_ptr<cairn::Module> module_ = std::make_shared<cairn::Module>();
  std::shared_ptr<cairn::Adam> adam_;
  std::vector<Parameter> params_;  // l1 kernel, l1 bias, l2 kernel, l2 bias, out kernel, out bias
};

}  // namespace train
