// SPDX-License-Identifier: Apache-2.0
#include "cairn/optim/optimizer.hpp"

#include "cairn/core/error.hpp"

namespace cairn {

std::shared_ptr<Variable> Optimizer::get_slot(const Variable& variable,
                                              const std::string& name) const {
  const auto found = slot_index_.find({&variable, name});
  if (found == slot_index_.end()) return nullptr;
  const Slot& slot = slots_[found->second];
  // The entry may belong to a dead variable whose address `variable` now occupies.
  return slot.variable.lock().get() == &variable ? slot.value : nullptr;
}

std::shared_ptr<Variable> Optimizer::add_slot(const std::shared_ptr<Variable>& variable,
                                              const std::string& name) {
  if (!variable) throw Error(ErrorCode::kInvalidArgument, "add_slot: variable is null");
  return add_slot(variable, name, variable->layout());
}

std::shared_ptr<Variable> Optimizer::add_slot(const std::shared_ptr<Variable>& variable,
                                              const std::string& name, const Layout& layout) {
  if (!variable) throw Error(ErrorCode::kInvalidArgument, "add_slot: variable is null");
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "add_slot: slot name is empty");
  if (auto existing = get_slot(*variable, name)) return existing;

  auto slot = std::make_shared<Variable>(variable->rank(), variable->nranks(), variable->dtype(),
                                         variable->shape(), layout);
  slots_.push_back(Slot{variable, name, slot});
  try {
    // Overwrites the entry of a dead variable that had the same address.
    slot_index_[{variable.get(), name}] = slots_.size() - 1;
  } catch (...) {
    slots_.pop_back();
    throw;
  }
  // A copy: restoring the slot may rebind this optimizer. Newest restore first.
  const std::vector<RestoreBinding> bindings = restore_bindings();
  for (auto b = bindings.rbegin(); b != bindings.rend(); ++b)
    b->hook->on_slot_added(*this, b->node, variable, name, slot);
  return slot;
}

std::shared_ptr<Variable> Optimizer::aligned_slot(const std::shared_ptr<Variable>& variable,
                                                  const std::string& name) {
  auto slot = add_slot(variable, name);
  if (slot->local_boxes() != variable->local_boxes())
    throw Error(ErrorCode::kInvalidArgument,
                "slot '" + name + "' is laid out as " + slot->layout().describe() +
                    ", unlike its variable (" + variable->layout().describe() +
                    "); apply() needs both laid out alike");
  return slot;
}

}  // namespace cairn
