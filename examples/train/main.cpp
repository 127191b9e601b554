// SPDX-License-Identifier: Apache-2.0
// train: a data-parallel MLP training job that checkpoints with cairn, can be killed, and resumes
// from the newest valid checkpoint on the same or a different number of ranks.
//
//   mpirun -n 4 train --dir D --steps 60 --every 10            # train, save every 10 steps
//   mpirun -n 4 train --dir D --steps 60 --resume              # continue from the newest valid one
//   mpirun -n 3 train --dir D --steps 60 --resume              # ... on 3 ranks (elastic)
//   --die-rank R --die-step S                                   # rank R is SIGKILLed after step S
//   --step-ms M          # a step lasts at least M ms more: a short job that runs long enough to
//                        # be signalled by a scheduler (the results do not depend on it)
//
// At the end rank 0 prints "final-digest <hex>", a digest of all weights, Adam moments and the
// step count that does not depend on the number of ranks.
#include <mpi.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "cairn/cairn.hpp"
#include "mlp.hpp"
#include "synthetic_data.hpp"

namespace {

struct Options {
  int64_t steps = 60;
  int64_t every = 10;
  std::string dir;
  int hidden = 128;
  int batch = 48;
  uint64_t seed = 1;
  bool resume = false;
  int die_rank = -1;
  int64_t die_step = -1;
  int64_t log_every = 10;
  int step_ms = 0;
};

const char* kUsage =
    "usage: train --dir D [--steps N] [--every K] [--hidden H] [--batch B] [--seed S] [--resume]\n"
    "             [--die-rank R --die-step S] [--log-every L] [--step-ms M]\n";

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--resume") {
      o.resume = true;
      continue;
    }
    if (!(v = value())) return false;
    if (a == "--steps")
      o.steps = std::atoll(v);
    else if (a == "--every")
      o.every = std::atoll(v);
    else if (a == "--dir")
      o.dir = v;
    else if (a == "--hidden")
      o.hidden = std::atoi(v);
    else if (a == "--batch")
      o.batch = std::atoi(v);
    else if (a == "--seed")
      o.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--die-rank")
      o.die_rank = std::atoi(v);
    else if (a == "--die-step")
      o.die_step = std::atoll(v);
    else if (a == "--log-every")
      o.log_every = std::atoll(v);
    else if (a == "--step-ms")
      o.step_ms = std::atoi(v);
    else
      return false;
  }
  return !o.dir.empty() && o.steps >= 0 && o.every > 0 && o.hidden > 0 && o.batch > 0 &&
         o.log_every > 0 && o.step_ms >= 0;
}

int run(const Options& o) {
  cairn::Session session(MPI_COMM_WORLD);
  const int rank = session.rank(), n = session.size();
  auto say = [&](const char* fmt, auto... args) {
    if (rank == 0) {
      std::printf(fmt, args...);
      std::fflush(stdout);
    }
  };
  if (o.batch % n != 0) {
    say("train: the global batch (%d) must be divisible by the number of ranks (%d)\n", o.batch, n);
    return 2;
  }
  train::Dataset data{.samples = 6144, .seed = o.seed};
  train::Mlp mlp(session, o.hidden, o.seed);
  auto loader = std::make_shared<train::Loader>(data, rank, n);
  auto completed = std::make_shared<cairn::State<int64_t>>(cairn::StateScope::kGlobal, 0);
  cairn::Checkpoint ckpt(session, {{"model", mlp.module()},
                                   {"optimizer", mlp.optimizer()},
                                   {"loader", loader},
                                   {"step", completed}});
  cairn::CheckpointManager mgr(ckpt, o.dir, {.max_to_keep = 3});
  cairn::PreemptionHandler preemption;  // before the restore: a signal during it is kept, not fatal
  if (o.resume) {
    auto outcome = mgr.restore_or_initialize();
    if (outcome.path) {
      outcome.status->assert_consumed();
      say("resumed from %s at step %lld on %d ranks\n", outcome.path->c_str(),
          static_cast<long long>(completed->value()), n);
    } else {
      say("no checkpoint in %s: starting from step 0\n", o.dir.c_str());
    }
  } else if (mgr.latest_checkpoint()) {
    say("train: %s already holds checkpoints; pass --resume or use an empty --dir\n",
        o.dir.c_str());
    return 2;
  }
  say("model: hidden %d, %.1f MiB of weights, %.1f MiB of Adam moments (sharded over %d ranks)\n",
      o.hidden, mlp.parameter_bytes() / 1048576.0, 2 * mlp.parameter_bytes() / 1048576.0, n);
  double window_start = MPI_Wtime();
  int64_t window_steps = 0;
  bool first = true;
  while (completed->value() < o.steps) {
    const double loss = mlp.step(data, loader->next(o.batch / n), o.batch);
    if (o.step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.step_ms));
    const int64_t step = ++completed->value();
    ++window_steps;
    if (step % o.log_every == 0 || first) {
      first = false;
      const double now = MPI_Wtime();
      say("step %lld loss %.6f (%.0f samples/s)\n", static_cast<long long>(step), loss,
          static_cast<double>(window_steps * o.batch) / std::max(now - window_start, 1e-9));
      window_start = now;
      window_steps = 0;
    }
    if (rank == o.die_rank && step == o.die_step) {
      std::fprintf(stderr, "rank %d dies abruptly after step %lld\n", rank,
                   static_cast<long long>(step));
      std::fflush(stderr);
      std::raise(SIGKILL);
    }
    const bool preempted = cairn::preemption_requested(session);
    if (step % o.every == 0 || preempted) {
      const std::string path = *mgr.save(step, /*check_interval=*/false);
      const cairn::SaveInfo& info = ckpt.last_save();
      say("saved %s: %.1f MiB in %.3f s (%.2f GB/s)\n", path.c_str(), info.bytes / 1048576.0,
          info.seconds, info.bytes / std::max(info.seconds, 1e-9) / 1e9);
    }
    if (preempted) {
      say("preempted: saved step %lld, exiting with %d\n", static_cast<long long>(step),
          cairn::kPreemptedExitCode);
      return cairn::kPreemptedExitCode;
    }
  }
  const uint64_t digest = mlp.digest();
  say("final-step %lld\n", static_cast<long long>(completed->value()));
  say("final-digest %016llx\n", static_cast<unsigned long long>(digest));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  Options options;
  int rc = 2;
  if (!parse(argc, argv, options)) {
    std::fputs(kUsage, stderr);
  } else {
    try {
      rc = run(options);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "train: %s\n", e.what());
      rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}
