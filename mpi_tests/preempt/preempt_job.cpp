// SPDX-License-Identifier: Apache-2.0
// preempt_job: the MPI "training" program the preemption test drives (preempt_test.sh). Not a
// gtest: the test is the sequence run / signal / save / exit 75 / restart / finish, run by the
// script.
//
//   mpirun -n N preempt_job DIR RUNDIR STEPS INTERVAL SLEEP_MS
//
// A deterministic training loop over steps 1..STEPS. Step s updates every element of a block-
// sharded f32 Variable from s and the element's global index (x = x/2 + f(s, index)), so the final
// values depend on every step having run exactly once, in order, whatever the number of ranks.
// A per-rank State<int64_t> counts the completed steps. A CheckpointManager saves "ckpt-<step>.h5"
// in DIR every INTERVAL steps (checkpoint_interval with the step counter as step_counter).
//
// At each step boundary the ranks ask preemption_requested(): if any rank received SIGTERM or
// SIGUSR1, every rank saves that step (a forced save) and the job exits with kPreemptedExitCode.
// On start, restore_or_initialize() resumes from the newest checkpoint.
//
// For the driver, in RUNDIR (written atomically: temporary file, then rename):
//   pid.<rank>       this rank's pid, written once the signal handlers are installed;
//   progress.<rank>  the last completed step, rewritten after each step.
// SLEEP_MS is slept after each step only so that the driver has time to act at all; the driver
// synchronizes on the files, never on time.
//
// Output, one line per rank on stdout (rank 0 adds "saved step S" lines):
//   preempt_job: rank R started fresh | resumed at step S from PATH
//   preempt_job: rank R preempted-save step S signalled-here yes|no PATH
//   preempt_job: rank R finished step S digest D
// Exit codes: 0 finished, 75 (cairn::kPreemptedExitCode) saved on preemption, 1 error, 2 usage.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"

namespace {

using namespace cairn;

// 1.26 MB of f32: above the 1 MiB pack threshold, so a dataset of its own, written as one
// hyperslab per rank.
const Shape kShape{4099, 77};

struct Args {
  std::string dir;
  std::string run_dir;
  int64_t steps = 0;
  int64_t interval = 0;
  int64_t sleep_ms = 0;
};

float initial_value(int64_t index) {
  return static_cast<float>(index % 13);
}

// One training step: x -> (2x + f(step, index)) mod 4093, in integers exactly representable in
// f32. Doubling modulo a prime forgets nothing (a contraction such as x/2 + f would forget all but
// the last ~24 steps), so a step skipped, repeated or taken out of order changes the final values.
float updated_value(float x, int64_t step, int64_t index) {
  const double next =
      static_cast<double>(x) * 2.0 + static_cast<double>((step * 31 + index) % 1021);
  return static_cast<float>(std::fmod(next, 4093.0));
}

// Visits every local element of `v` (one box: a block layout) with its row-major global index.
template <class Fn>
void for_each_element(Variable& v, Fn&& fn) {
  for (std::size_t b = 0; b < v.local_boxes().size(); ++b) {
    const Box& box = v.local_boxes()[b];
    std::span<float> data = v.local<float>(b);
    const int64_t row_elements = box.count[1];
    for (int64_t i = 0; i < box.volume(); ++i) {
      const int64_t row = box.offset[0] + i / row_elements;
      const int64_t col = box.offset[1] + i % row_elements;
      fn(data[static_cast<std::size_t>(i)], row * kShape[1] + col);
    }
  }
}

uint64_t mix(uint64_t z) {  // splitmix64's finalizer
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Collective over MPI_COMM_WORLD. An order-independent digest of the whole tensor (a sum of
// per-element hashes of index and bits), so it does not depend on the number of ranks.
uint64_t digest(Variable& v) {
  uint64_t local = 0;
  for_each_element(v, [&](float& x, int64_t g) {
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    local += mix(static_cast<uint64_t>(g) * 0x100000001b3ULL ^ bits);
  });
  uint64_t total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  return total;
}

// Local. Writes `text` to `path` so that a reader sees the old or the new content, never a part.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

int run(const Session& s, const Args& a) {
  const std::string rank_suffix = "." + std::to_string(s.rank());
  std::filesystem::create_directories(a.run_dir);
  write_file_atomically(a.run_dir + "/pid" + rank_suffix, std::to_string(::getpid()));

  auto weights = Variable::create<float>(s, kShape, Layout::block(0));
  auto counter = std::make_shared<State<int64_t>>(StateScope::kPerRank, int64_t{0});
  Checkpoint ckpt(s, {{"weights", weights}, {"step", counter}});
  int64_t& step = counter->value();
  ManagerOptions options{.max_to_keep = 3, .checkpoint_interval = a.interval};
  options.step_counter = [&step] { return step; };
  CheckpointManager mgr(ckpt, a.dir, options);

  RestoreOutcome outcome = mgr.restore_or_initialize(
      [&] { for_each_element(*weights, [](float& x, int64_t g) { x = initial_value(g); }); });
  if (outcome.path) {
    outcome.status->assert_consumed();
    // Every rank must have restored the same step; a mix would be a restore bug.
    const int64_t low = s.comm().allreduce_min(step), high = s.comm().allreduce_max(step);
    if (low != high) {
      std::fprintf(stderr,
                   "preempt_job: rank %d: ranks restored different steps (%" PRId64 "..%" PRId64
                   ")\n",
                   s.rank(), low, high);
      return 1;
    }
    std::printf("preempt_job: rank %d resumed at step %" PRId64 " from %s\n", s.rank(), step,
                outcome.path->c_str());
  } else {
    std::printf("preempt_job: rank %d started fresh\n", s.rank());
  }

  while (true) {
    // The step boundary: collective, so every rank takes the same branch.
    if (preemption_requested(s)) {
      const std::optional<std::string> path = mgr.save(step, /*check_interval=*/false);
      std::printf("preempt_job: rank %d preempted-save step %" PRId64 " signalled-here %s %s\n",
                  s.rank(), step, preemption_signalled() ? "yes" : "no",
                  path ? path->c_str() : "(none)");
      return kPreemptedExitCode;
    }
    if (step >= a.steps) break;
    ++step;
    for_each_element(*weights, [&](float& x, int64_t g) { x = updated_value(x, step, g); });
    if (const auto path = mgr.save(step); path && s.rank() == 0)
      std::printf("preempt_job: saved step %" PRId64 " (%s)\n", step, path->c_str());
    write_file_atomically(a.run_dir + "/progress" + rank_suffix, std::to_string(step));
    std::this_thread::sleep_for(std::chrono::milliseconds(a.sleep_ms));
  }
  if (mgr.last_saved_step() != step) mgr.save(step, /*check_interval=*/false);
  const uint64_t d = digest(*weights);
  std::printf("preempt_job: rank %d finished step %" PRId64 " digest %016" PRIx64 "\n", s.rank(),
              step, d);
  return 0;
}

bool parse_int(const char* text, int64_t min, int64_t& out) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < min) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  // Whole lines, one write each: mpirun must not splice two ranks' lines together.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int rc = 2;
  Args a;
  if (argc != 6 || !parse_int(argv[3], 1, a.steps) || !parse_int(argv[4], 1, a.interval) ||
      !parse_int(argv[5], 0, a.sleep_ms)) {
    if (rank == 0) std::fprintf(stderr, "usage: preempt_job DIR RUNDIR STEPS INTERVAL SLEEP_MS\n");
  } else {
    a.dir = argv[1];
    a.run_dir = argv[2];
    // Installed before the pid file exists: a signal the driver sends is always recorded.
    PreemptionHandler handler;
    try {
      Session session(MPI_COMM_WORLD);
      rc = run(session, a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "preempt_job: rank %d: %s\n", rank, e.what());
      rc = 1;
    }
  }
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Finalize();
  return rc;
}
