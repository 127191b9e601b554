// SPDX-License-Identifier: Apache-2.0
#pragma once
// Optimizers own slot variables keyed by (variable, slot name), shaped and sharded like the
// variable they belong to, as in TensorFlow.
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cairn/graph/trackable.hpp"
#include "cairn/tensor/variable.hpp"

namespace cairn {

class Optimizer : public Trackable {
 public:
  struct Slot {
    std::weak_ptr<Variable> variable;
    std::string name;
    std::shared_ptr<Variable> value;
  };

  const char* kind() const noexcept override { return "optimizer"; }

  /// Local. The slot `name` of `variable`, or null if it was not created yet.
  std::shared_ptr<Variable> get_slot(const Variable& variable, const std::string& name) const;
  /// Local. Creates (zero-filled) or returns the slot `name` of `variable`, with the variable's
  /// dtype, shape and layout. A slot created after a restore that saved it is restored now.
  std::shared_ptr<Variable> add_slot(const std::shared_ptr<Variable>& variable,
                                     const std::string& name);
  /// Local. As above, but the slot is laid out by `layout`: optimizer state sharded differently
  /// from its (e.g. replicated) variable, as in ZeRO stage 1. Updating such slots is the caller's
  /// job; apply() requires slots laid out like their variable.
  std::shared_ptr<Variable> add_slot(const std::shared_ptr<Variable>& variable,
                                     const std::string& name, const Layout& layout);
  /// Local. Every slot, in creation order.
  const std::vector<Slot>& slots() const noexcept { return slots_; }

  /// Local. Applies one update from `gradient` (this rank's elements of `variable`, in local
  /// storage order). f32 and f64 variables are supported.
  virtual void apply(const std::shared_ptr<Variable>& variable,
                     std::span<const double> gradient) = 0;

 protected:
  /// Local. add_slot(), but throws if an existing slot is laid out unlike `variable` (apply()
  /// updates element by element).
  std::shared_ptr<Variable> aligned_slot(const std::shared_ptr<Variable>& variable,
                                         const std::string& name);

 private:
  std::vector<Slot> slots_;
  // Position in slots_ by (variable address, slot name), so that apply() over many variables
  // stays linear. Lookups confirm the weak pointer: a dead variable's address may be reused.
  std::map<std::pair<const Variable*, std::string>, std::size_t> slot_index_;
};

/// Stochastic gradient descent with (optionally Nesterov) momentum; slot "momentum".
class SGD : public Optimizer {
 public:
  struct Options {
    double learning_rate = 0.01;
    double momentum = 0.9;
    bool nesterov = false;
  };
  explicit SGD(Options options);
  void apply(const std::shared_ptr<Variable>& variable, std::span<const double> gradient) override;

 private:
  Options options_;
};

/// Adam (Kingma & Ba); slots "m" and "v"; the step count is the tracked variable "iterations".
class Adam : public Optimizer {
 public:
  struct Options {
    double learning_rate = 0.001;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double epsilon = 1e-7;
  };
  /// Local. `rank`/`nranks` place the replicated "iterations" counter.
  Adam(int rank, int nranks, Options options);
  Adam(const Session& session, Options options) : Adam(session.rank(), session.size(), options) {}
  /// Local. Advances the step count; call once per training step, before apply().
  void begin_step();
  int64_t iterations() const;
  void apply(const std::shared_ptr<Variable>& variable, std::span<const double> gradient) override;

 private:
  Options options_;
  std::shared_ptr<Variable> iterations_;
};

}  // namespace cairn
