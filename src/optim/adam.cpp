// SPDX-License-Identifier: Apache-2.0
#include <cmath>

#include "cairn/optim/optimizer.hpp"
#include "optim/update_support.hpp"

namespace cairn {

Adam::Adam(int rank, int nranks, Options options)
    : options_(options),
      iterations_(
          std::make_shared<Variable>(rank, nranks, DType::kI64, Shape{}, Layout::replicated())) {
  if (!(options_.beta1 >= 0 && options_.beta1 < 1) || !(options_.beta2 >= 0 && options_.beta2 < 1))
    throw Error(ErrorCode::kInvalidArgument, "Adam: beta1 and beta2 must lie in [0, 1)");
  if (!std::isfinite(options_.learning_rate) || !(options_.epsilon >= 0))
    throw Error(ErrorCode::kInvalidArgument, "Adam: learning rate must be finite and epsilon >= 0");
  // A tracked variable, so that the step count is checkpointed and restored with the slots.
  track("iterations", iterations_);
}

void Adam::begin_step() {
  iterations_->local_all<int64_t>()[0] += 1;
}

int64_t Adam::iterations() const {
  const Variable& counter = *iterations_;
  return counter.local<int64_t>()[0];
}

void Adam::apply(const std::shared_ptr<Variable>& variable, std::span<const double> gradient) {
  detail::check_update("Adam", variable, gradient);
  const int64_t step = iterations();
  if (step < 1)
    throw Error(ErrorCode::kInvalidArgument, "Adam: iterations is " + std::to_string(step) +
                                                 "; call begin_step() before apply()");

  const double beta1 = options_.beta1;
  const double beta2 = options_.beta2;
  const double epsilon = options_.epsilon;
  // TensorFlow's formulation: the bias corrections fold into the step size, and epsilon is added
  // to the uncorrected sqrt(v) ("epsilon hat" in the paper).
  const double t = static_cast<double>(step);
  const double step_size =
      options_.learning_rate * std::sqrt(1 - std::pow(beta2, t)) / (1 - std::pow(beta1, t));
  const int64_t n = variable->local_elements();

  detail::dispatch_floating("Adam", variable->dtype(), [&]<class T>(T) {
    const std::span<T> weights = variable->local_all<T>();
    const std::span<T> m = aligned_slot(variable, "m")->local_all<T>();
    const std::span<T> v = aligned_slot(variable, "v")->local_all<T>();
#pragma omp parallel for schedule(static) if (n > detail::kParallelUpdateElements)
    for (int64_t i = 0; i < n; ++i) {
      const double g = gradient[i];
      const double m_i = beta1 * static_cast<double>(m[i]) + (1 - beta1) * g;
      const double v_i = beta2 * static_cast<double>(v[i]) + (1 - beta2) * g * g;
      m[i] = static_cast<T>(m_i);
      v[i] = static_cast<T>(v_i);
      weights[i] = static_cast<T>(static_cast<double>(weights[i]) -
                                  step_size * m_i / (std::sqrt(v_i) + epsilon));
    }
  });
}

}  // namespace cairn
