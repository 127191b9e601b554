// SPDX-License-Identifier: Apache-2.0
#include "manager/background_removal.hpp"

#include <chrono>
#include <exception>
#include <utility>

namespace cairn::detail {
namespace {

BackgroundRemoval::Outcome timed(const BackgroundRemoval::Job& job) {
  const auto started = std::chrono::steady_clock::now();
  BackgroundRemoval::Outcome outcome;
  try {
    outcome = job();
  } catch (const std::exception& e) {
    outcome.failures.emplace_back(e.what());
  } catch (...) {
    outcome.failures.emplace_back("deleting retired files failed with an unknown exception");
  }
  outcome.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return outcome;
}

void append(BackgroundRemoval::Outcome& to, BackgroundRemoval::Outcome from) {
  for (std::string& line : from.failures) to.failures.push_back(std::move(line));
  for (std::string& line : from.deleted) to.deleted.push_back(std::move(line));
  to.seconds += from.seconds;
}

}  // namespace

BackgroundRemoval::~BackgroundRemoval() {
  if (running_.valid()) running_.wait();
}

void BackgroundRemoval::start(const Job& job) {
  if (running_.valid()) append(done_, running_.get());
  try {
    running_ = std::async(std::launch::async, [job] { return timed(job); });
  } catch (...) {
    // No thread (or no memory for one) to be had: delete now rather than not at all.
    append(done_, timed(job));
  }
}

BackgroundRemoval::Outcome BackgroundRemoval::finish() {
  if (running_.valid()) append(done_, running_.get());
  return std::exchange(done_, {});
}

}  // namespace cairn::detail
