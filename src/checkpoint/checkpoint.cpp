#include "cairn/checkpoint/checkpoint.hpp"

#include <chrono>
#include <filesystem>

#include "checkpoint/restore.hpp"
#include "checkpoint/save.hpp"
#include "checkpoint/state_file.hpp"

namespace cairn {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Checkpoint::Checkpoint(const Session& session, Children children)
    : session_(&session), root_(std::make_shared<Module>()) {
  for (auto& [name, child] : children) root_->track(name, std::move(child));
}

std::string Checkpoint::save(const std::string& prefix) {
  const int64_t counter = save_counter_ + 1;
  const std::string path = prefix + "-" + std::to_string(counter) + ".h5";
  const detail::SaveStats stats = detail::save_container(*session_, root_, path, counter, [&] {
    detail::record_latest(path, detail::kPlainSaveOwner, unix_now());
  });
  last_save_ = {path, stats.bytes, stats.seconds};
  save_counter_ = counter;
  return path;
}

std::string Checkpoint::save_to(const std::string& path, const std::function<void()>& after_commit) {
  const detail::SaveStats stats =
      detail::save_container(*session_, root_, path, save_counter_ + 1, after_commit);
  last_save_ = {path, stats.bytes, stats.seconds};
  ++save_counter_;
  return path;
}

std::string Checkpoint::write(const std::string& path) {
  const detail::SaveStats stats = detail::save_container(*session_, root_, path, save_counter_, nullptr);
  last_save_ = {path, stats.bytes, stats.seconds};
  return path;
}

RestoreStatus Checkpoint::load(const std::string& path, bool restore_counter) {
  auto context = detail::restore_container(*session_, root_, path);
  if (restore_counter) save_counter_ = context->manifest().save_counter;
  return RestoreStatus(std::move(context));
}

RestoreStatus Checkpoint::read(const std::string& path) { return load(path, false); }
RestoreStatus Checkpoint::restore(const std::string& path) { return load(path, true); }

std::optional<std::string> latest_checkpoint(const std::string& directory) {
  auto state = detail::read_state_file(directory);
  if (!state || state->latest.empty()) return std::nullopt;
  const std::string path = (std::filesystem::path(directory) / state->latest).string();
  if (!std::filesystem::exists(path))
    throw Error(ErrorCode::kNotFound,
                "the state file names '" + state->latest + "' as the latest checkpoint, but it "
                "does not exist",
                {.checkpoint = path, .operation = "latest_checkpoint"});
  return path;
}

std::optional<std::string> latest_checkpoint(const Session& session, const std::string& directory) {
  const Comm& comm = session.comm();
  std::string found;
  comm.run_agreed([&] {
    if (comm.rank() != 0) return;
    auto latest = latest_checkpoint(directory);
    found = latest ? "1" + *latest : "0";
  });
  comm.broadcast(found, 0);
  if (found.empty() || found[0] == '0') return std::nullopt;
  return found.substr(1);
}

}  // namespace cairn
