// SPDX-License-Identifier: Apache-2.0
#include <cmath>

#include "cairn/optim/optimizer.hpp"
#include "optim/update_support.hpp"

namespace cairn {

SGD::SGD(Options options) : options_(options) {
  if (!std::isfinite(options_.learning_rate) || !std::isfinite(options_.momentum) ||
      options_.momentum < 0)
    throw Error(ErrorCode::kInvalidArgument,
                "SGD: learning rate must be finite and momentum finite and >= 0");
}

void SGD::apply(const std::shared_ptr<Variable>& variable, std::span<const double> gradient) {
  detail::check_update("SGD", variable, gradient);
  const double lr = options_.learning_rate;
  const double momentum = options_.momentum;
  const int64_t n = variable->local_elements();

  detail::dispatch_floating("SGD", variable->dtype(), [&]<class T>(T) {
    const std::span<T> weights = variable->local_all<T>();
    // As in TensorFlow, plain SGD keeps no slot: a zero momentum would only store -lr * g.
    if (momentum == 0) {
#pragma omp parallel for schedule(static) if (n > detail::kParallelUpdateElements)
      for (int64_t i = 0; i < n; ++i)
        weights[i] = static_cast<T>(static_cast<double>(weights[i]) - lr * gradient[i]);
      return;
    }
    const std::span<T> velocity = aligned_slot(variable, "momentum")->local_all<T>();
    const bool nesterov = options_.nesterov;
#pragma omp parallel for schedule(static) if (n > detail::kParallelUpdateElements)
    for (int64_t i = 0; i < n; ++i) {
      const double v = momentum * static_cast<double>(velocity[i]) - lr * gradient[i];
      velocity[i] = static_cast<T>(v);
      const double step = nesterov ? momentum * v - lr * gradient[i] : v;
      weights[i] = static_cast<T>(static_cast<double>(weights[i]) + step);
    }
  });
}

}  // namespace cairn
