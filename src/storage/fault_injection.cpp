#include "storage/fault_injection.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cairn {

void fault_point(const char* phase, int rank) {
  const char* spec = std::getenv("CAIRN_FAULT_INJECT");
  if (!spec || !*spec) return;
  std::string s(spec);
  std::string want_phase = s;
  int want_rank = -1;
  if (auto colon = s.find(':'); colon != std::string::npos) {
    want_phase = s.substr(0, colon);
    want_rank = std::atoi(s.c_str() + colon + 1);
  }
  if (want_phase != phase || (want_rank >= 0 && want_rank != rank)) return;
  std::fprintf(stderr, "cairn: fault injection: rank %d kills itself at '%s'\n", rank, phase);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace cairn
