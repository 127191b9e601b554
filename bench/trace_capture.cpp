// SPDX-License-Identifier: Apache-2.0
#include "trace_capture.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>

namespace cairn::bench {

TraceCapture::TraceCapture(bool enabled) {
  if (!enabled) return;
  char name[] = "/tmp/cairn-bench-trace-XXXXXX";
  file_fd_ = ::mkstemp(name);
  if (file_fd_ < 0) return;
  ::unlink(name);
  std::fflush(stderr);
  saved_fd_ = ::dup(STDERR_FILENO);
  if (saved_fd_ < 0 || ::dup2(file_fd_, STDERR_FILENO) < 0) {
    if (saved_fd_ >= 0) ::close(saved_fd_);
    ::close(file_fd_);
    saved_fd_ = file_fd_ = -1;
  }
}

TraceCapture::~TraceCapture() {
  finish();
}

std::map<std::string, double> TraceCapture::finish() {
  std::map<std::string, double> phases;
  if (saved_fd_ < 0) return phases;
  std::fflush(stderr);
  ::dup2(saved_fd_, STDERR_FILENO);
  ::close(saved_fd_);
  saved_fd_ = -1;
  std::string text;
  char buf[4096];
  ::lseek(file_fd_, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(file_fd_, buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(file_fd_);
  file_fd_ = -1;
  // "cairn trace [rank 0] save '/path/x.h5': write data 0.0120 s, 1048576 bytes"
  static const std::regex line_re(
      R"(^cairn trace \[rank \d+\] (\w+) '.*': (.+) ([0-9.]+) s(, -?\d+ bytes)?$)");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, line_re))
      phases[m[1].str() + ": " + m[2].str()] += std::strtod(m[3].str().c_str(), nullptr);
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  }
  return phases;
}

}  // namespace cairn::bench
