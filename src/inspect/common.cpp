#include "cairn/inspect/common.hpp"

#include <ostream>

namespace cairn::inspect {

int exit_code_for(const Error& error) noexcept {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kCorrupt:
      return kExitFailed;
    default:
      return kExitIo;
  }
}

std::string bare_message(const Error& error) {
  std::string text = error.what();
  const std::string prefix = std::string(to_string(error.code())) + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  // The suffix Error appends: " [rank 3, checkpoint c.h5, key k, box [0:2], during read]".
  const ErrorContext& c = error.context();
  std::string parts;
  auto add = [&](const std::string& part) { parts += (parts.empty() ? "" : ", ") + part; };
  if (c.rank >= 0) add("rank " + std::to_string(c.rank));
  if (!c.checkpoint.empty()) add("checkpoint " + c.checkpoint);
  if (!c.key.empty()) add("key " + c.key);
  if (!c.box.empty()) add("box " + c.box);
  if (!c.operation.empty()) add("during " + c.operation);
  const std::string suffix = parts.empty() ? "" : " [" + parts + "]";
  if (!suffix.empty() && text.size() >= suffix.size() &&
      text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0)
    text.erase(text.size() - suffix.size());
  return text;
}

int run_guarded(const std::string& verb, std::ostream& err, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    err << "cairn " << verb << ": " << e.what() << '\n';
    return exit_code_for(e);
  } catch (const std::exception& e) {
    err << "cairn " << verb << ": " << e.what() << '\n';
    return kExitIo;
  }
}

}  // namespace cairn::inspect
