#include "cairn/optim/optimizer.hpp"

#include "cairn/core/error.hpp"

namespace cairn {

std::shared_ptr<Variable> Optimizer::get_slot(const Variable& variable,
                                              const std::string& name) const {
  for (const Slot& slot : slots_)
    if (slot.name == name && slot.variable.lock().get() == &variable) return slot.value;
  return nullptr;
}

std::shared_ptr<Variable> Optimizer::add_slot(const std::shared_ptr<Variable>& variable,
                                              const std::string& name) {
  if (!variable) throw Error(ErrorCode::kInvalidArgument, "add_slot: variable is null");
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "add_slot: slot name is empty");
  if (auto existing = get_slot(*variable, name)) return existing;

  auto slot = std::make_shared<Variable>(variable->rank(), variable->nranks(), variable->dtype(),
                                         variable->shape(), variable->layout());
  slots_.push_back(Slot{variable, name, slot});
  // Copy the hook: restoring the slot may rebind this optimizer.
  if (const std::shared_ptr<RestoreHook> hook = restore_binding().hook)
    hook->on_slot_added(*this, restore_binding().node, variable, name, slot);
  return slot;
}

}  // namespace cairn
