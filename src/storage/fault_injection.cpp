// SPDX-License-Identifier: Apache-2.0
#include "storage/fault_injection.hpp"

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace cairn {
namespace {

// True when the variable `name` holds "<phase>[:<rank>][@<n>]" for this phase and rank (and, with
// "@<n>", this is the n-th time this process reaches it: a save and the drain that follows it run
// the same phases, and only the drain's should fire).
bool selected(const char* name, const char* phase, int rank) {
  const char* spec = std::getenv(name);
  if (!spec || !*spec) return false;
  std::string s(spec);
  long occurrence = 0;
  if (auto at = s.find('@'); at != std::string::npos) {
    occurrence = std::atol(s.c_str() + at + 1);
    s.resize(at);
  }
  std::string want_phase = s;
  int want_rank = -1;
  if (auto colon = s.find(':'); colon != std::string::npos) {
    want_phase = s.substr(0, colon);
    want_rank = std::atoi(s.c_str() + colon + 1);
  }
  if (want_phase != phase || (want_rank >= 0 && want_rank != rank)) return false;
  if (occurrence <= 0) return true;
  // Counted per variable: a drain's background thread reaches its phases concurrently.
  static std::mutex mutex;
  static std::map<std::string, long> reached;
  std::lock_guard<std::mutex> lock(mutex);
  return ++reached[std::string(name) + ' ' + phase + ' ' + std::to_string(rank)] == occurrence;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void pause_here(const char* phase, int rank) {
  const char* file = std::getenv("CAIRN_FAULT_PAUSE_FILE");
  if (!file || !*file) {
    std::fprintf(stderr,
                 "cairn: fault injection: CAIRN_FAULT_PAUSE without CAIRN_FAULT_PAUSE_FILE\n");
    return;
  }
  const std::string resume(file);
  std::fprintf(stderr, "cairn: fault injection: rank %d pauses at '%s'\n", rank, phase);
  std::fflush(stderr);
  // Announced only now, after the line above, so a test that sees the marker also has the line.
  std::ofstream(resume + ".paused-" + std::to_string(rank)) << phase << '\n';
  // Bounded: a test that never resumes must not turn into a hang of the library.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!exists(resume) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::fprintf(stderr, "cairn: fault injection: rank %d resumes after '%s'\n", rank, phase);
  std::fflush(stderr);
}

}  // namespace

std::optional<int64_t> injected_free_bytes(int rank) {
  const char* spec = std::getenv("CAIRN_FAULT_FREE_BYTES");
  if (!spec || !*spec) return std::nullopt;
  char* end = nullptr;
  const long long bytes = std::strtoll(spec, &end, 10);
  if (end == spec || (*end != '\0' && *end != ':')) return std::nullopt;  // malformed: not set
  if (*end == ':' && std::atoi(end + 1) != rank) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

void fault_point(const char* phase, int rank) {
  if (selected("CAIRN_FAULT_PAUSE", phase, rank)) pause_here(phase, rank);
  if (selected("CAIRN_FAULT_THROW", phase, rank))
    throw std::runtime_error(std::string("fault injection: a foreign exception at '") + phase +
                             "'");
  if (!selected("CAIRN_FAULT_INJECT", phase, rank)) return;
  std::fprintf(stderr, "cairn: fault injection: rank %d kills itself at '%s'\n", rank, phase);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace cairn
