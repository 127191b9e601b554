// SPDX-License-Identifier: Apache-2.0
// crash_saver: the MPI program the kill -9 crash tests drive (crash_test.sh). Not a gtest: the
// test is the sequence save / crash / verify / recover, run by the script.
//
//   mpirun -n N crash_saver save DIR STEP          # values for STEP; saves DIR/ckpt-<counter>.h5
//   mpirun -n M crash_saver verify DIR STEP        # latest_checkpoint(DIR) must hold STEP
//   mpirun -n M crash_saver verify-file FILE STEP  # FILE must be a committed checkpoint of STEP
//   mpirun -n N crash_saver mgr-save DIR STEP      # CheckpointManager: restore_or_initialize,
//                                                  # check the restored values, save ckpt-STEP.h5
//   mpirun -n M crash_saver mgr-verify DIR STEP    # restore_or_initialize must restore STEP
//
// save and mgr-save take suffixes (fault_test.sh, restore_crash_test.sh):
//   -async   save with save_async() and wait() instead of save();
//   -twice   save STEP, then STEP+1 in the same job; between the two, every rank pauses if
//            CAIRN_FAULT_PAUSE=between_saves (the protocol of src/storage/fault_injection.hpp:
//            "<CAIRN_FAULT_PAUSE_FILE>.paused-<rank>" is created, then the rank waits for
//            CAIRN_FAULT_PAUSE_FILE), so a test can delete the directory between two saves.
//   e.g. save-async, mgr-save-async, save-twice, mgr-save-twice.
//
// `save` restores the latest checkpoint first (if any), so save numbering continues and STEP is
// also the expected save_counter: the k-th successful save in a directory writes ckpt-k.h5.
// The mgr-* verbs (manager_crash_test.sh) use a CheckpointManager with max_to_keep = 2 that
// numbers checkpoints by step: ckpt-STEP.h5. mgr-save prints, on rank 0,
//   crash_saver: manager restored step R from PATH (skipped K) | manager initialized
//   crash_saver: manager saved step STEP to PATH; checkpoints: NAME...
// and fails if the restored values are not exactly those of the restored step. With multi-level
// checkpointing on (CAIRN_NODE_LOCAL_DIR, see include/cairn/manager/levels.hpp) a restore also
// prints, on every rank, then on rank 0:
//   crash_saver: rank R restored step S at level 'LEVEL' from PATH   (RestoreOutcome::level)
//   crash_saver: rebuilt nodes: K... | (none) (RestoreOutcome::rebuilt_nodes) crash_saver: skipped
//   PATH: REASON                                (one per skipped candidate)
// CRASH_SAVER_CHECK_FREE_SPACE=0 turns SessionOptions::check_free_space off.
// Exit codes: 0 ok, 1 verification or save failed (message on stderr), 2 usage.
#include <mpi.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"

namespace {

using namespace cairn;

// A large block-sharded tensor (1.19 MB > the 1 MiB pack threshold, so it is a dataset of its own
// and written as hyperslabs by every rank) and a small replicated one (packed).
const Shape kWeightsShape{9000, 33};
const Shape kBiasShape{5, 7};

// Exactly representable in f32 for the steps used (< 2^24 / 8): a step-1 value never equals a
// step-2 value, and the period 65521 (prime) does not align with the row length 33.
float weight_value(int64_t step, int64_t index) {
  return static_cast<float>(static_cast<double>(step) * 100000.0 +
                            static_cast<double>(index % 65521) * 0.125);
}
double bias_value(int64_t step, int64_t index) {
  return static_cast<double>(step) * 1.0e6 + 2000.0 + static_cast<double>(index);
}

// Per-rank opaque state: what a data loader would keep. On a job-size change every new rank
// takes the saved step, which must be the same in every saved value (else step = -1 flags it).
struct Progress {
  int64_t step = 0;
  int32_t rank = -1;
  int32_t nranks = 0;
  std::vector<int64_t> history;  // steps saved so far, to exercise a variable-size blob
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    // clang-format reads Boost's `ar & x` as a reference declaration.
    // clang-format off
    ar & step & rank & nranks & history;
    // clang-format on
  }
};

class ProgressState : public State<Progress> {
 public:
  ProgressState() : State<Progress>(StateScope::kPerRank) {}
  bool load_rescaled(const std::vector<std::string>& saved, int rank) override {
    std::optional<int64_t> step;
    for (const std::string& bytes : saved) {
      load_bytes(bytes);
      if (step && *step != value().step) step = -1;
      if (!step) step = value().step;
    }
    value().step = step.value_or(-1);
    value().rank = rank;
    return true;
  }
};

struct Model {
  std::shared_ptr<Variable> weights;
  std::shared_ptr<Variable> bias;
  std::shared_ptr<ProgressState> progress = std::make_shared<ProgressState>();
  Checkpoint ckpt;

  explicit Model(const Session& s)
      : weights(Variable::create<float>(s, kWeightsShape, Layout::block(0))),
        bias(Variable::create<double>(s, kBiasShape, Layout::replicated())),
        ckpt(s, {{"weights", weights}, {"bias", bias}, {"progress", progress}}) {}
};

// Visits every local element of `v` with its row-major global index.
template <class T, class Fn>
void for_each_element(Variable& v, Fn&& fn) {
  for (std::size_t b = 0; b < v.local_boxes().size(); ++b) {
    const Box& box = v.local_boxes()[b];
    std::span<T> data = v.local<T>(b);
    for (int64_t i = 0; i < box.volume(); ++i) {
      int64_t rem = i, global = 0, stride = 1;
      for (std::size_t d = box.rank(); d-- > 0;) {
        global += (box.offset[d] + rem % box.count[d]) * stride;
        rem /= box.count[d];
        stride *= v.shape()[d];
      }
      fn(data[static_cast<std::size_t>(i)], global);
    }
  }
}

void fill(Model& m, const Session& s, int64_t step) {
  for_each_element<float>(*m.weights, [&](float& x, int64_t g) { x = weight_value(step, g); });
  for_each_element<double>(*m.bias, [&](double& x, int64_t g) { x = bias_value(step, g); });
  Progress& p = m.progress->value();
  p.step = step;
  p.rank = s.rank();
  p.nranks = s.size();
  p.history.push_back(step);
}

// Local. Mismatching elements of this rank; prints the first few.
int64_t count_mismatches(Model& m, const Session& s, int64_t step) {
  int64_t bad = 0;
  auto report = [&](const char* key, int64_t g, double got, double want) {
    if (++bad <= 3)
      std::fprintf(stderr, "crash_saver: rank %d: %s[%lld] = %.17g, expected %.17g (step %lld)\n",
                   s.rank(), key, static_cast<long long>(g), got, want,
                   static_cast<long long>(step));
  };
  for_each_element<float>(*m.weights, [&](float& x, int64_t g) {
    if (x != weight_value(step, g)) report("weights", g, x, weight_value(step, g));
  });
  for_each_element<double>(*m.bias, [&](double& x, int64_t g) {
    if (x != bias_value(step, g)) report("bias", g, x, bias_value(step, g));
  });
  const Progress& p = m.progress->value();
  if (p.step != step || p.rank != s.rank()) {
    ++bad;
    std::fprintf(stderr, "crash_saver: rank %d: progress state step=%lld rank=%d, expected %lld\n",
                 s.rank(), static_cast<long long>(p.step), p.rank, static_cast<long long>(step));
  }
  return bad;
}

// How the save verbs save: save() or save_async() + wait(); once, or twice with a pause between.
struct SaveMode {
  bool async = false;
  bool twice = false;
};

// Collective. The between_saves pause of the -twice verbs (same protocol as the library's
// CAIRN_FAULT_PAUSE phases, which a program outside the library cannot call).
void pause_between_saves(const Session& s) {
  const char* spec = std::getenv("CAIRN_FAULT_PAUSE");
  const char* file = std::getenv("CAIRN_FAULT_PAUSE_FILE");
  if (!spec || std::string(spec) != "between_saves" || !file) return;
  std::fprintf(stderr, "crash_saver: rank %d pauses between saves\n", s.rank());
  std::fflush(stderr);
  std::ofstream(std::string(file) + ".paused-" + std::to_string(s.rank())) << "between_saves\n";
  struct stat st {};
  for (int i = 0; i < 12000 && ::stat(file, &st) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  s.comm().barrier();
}

int run_save(const Session& s, const std::string& dir, int64_t step, SaveMode mode) {
  Model m(s);
  if (const auto latest = latest_checkpoint(s, dir)) m.ckpt.restore(*latest).assert_consumed();
  const int64_t last = mode.twice ? step + 1 : step;
  for (int64_t k = step; k <= last; ++k) {
    if (k > step) pause_between_saves(s);
    fill(m, s, k);
    std::string path;
    if (mode.async) {
      path = m.ckpt.save_async(dir + "/ckpt");
      m.ckpt.wait();
    } else {
      path = m.ckpt.save(dir + "/ckpt");
    }
    if (m.ckpt.save_counter() != k) {
      if (s.rank() == 0)
        std::fprintf(stderr, "crash_saver: saved %s with save_counter %lld, expected %lld\n",
                     path.c_str(), static_cast<long long>(m.ckpt.save_counter()),
                     static_cast<long long>(k));
      return 1;
    }
    if (s.rank() == 0)
      std::printf("crash_saver: saved step %lld to %s on %d ranks\n", static_cast<long long>(k),
                  path.c_str(), s.size());
    std::fflush(stdout);
  }
  return 0;
}

int run_verify(const Session& s, const std::string& path, int64_t step) {
  Model m(s);
  RestoreStatus status = m.ckpt.restore(path);
  status.assert_consumed();
  const int64_t bad = s.comm().allreduce_sum(count_mismatches(m, s, step));
  const bool counter_ok = m.ckpt.save_counter() == step;
  if (s.rank() == 0) {
    if (!counter_ok)
      std::fprintf(stderr, "crash_saver: %s has save_counter %lld, expected %lld\n", path.c_str(),
                   static_cast<long long>(m.ckpt.save_counter()), static_cast<long long>(step));
    std::printf("crash_saver: %s: %s on %d ranks (saved on %d): %lld mismatching values\n",
                bad == 0 && counter_ok ? "verified" : "FAILED", path.c_str(), s.size(),
                CheckpointReader(path).world_size(), static_cast<long long>(bad));
  }
  return bad == 0 && counter_ok ? 0 : 1;
}

// The manager verbs' manager: numbered by step, two kept.
constexpr int kManagerKeep = 2;

// Collective. restore_or_initialize(); on a restore, the values must be exactly those of the step
// the restored checkpoint is named after. Sets `restored` to that step, or 0 if it initialized.
int manager_restore(const Session& s, Model& m, CheckpointManager& mgr, const std::string& dir,
                    int64_t& restored) {
  bool initialized = false;
  RestoreOutcome outcome = mgr.restore_or_initialize([&] { initialized = true; });
  restored = 0;
  if (initialized || !outcome.path) {
    if (s.rank() == 0) std::printf("crash_saver: manager initialized\n");
    return initialized && !outcome.path ? 0 : 1;
  }
  outcome.status->assert_consumed();
  restored = m.progress->value().step;
  const std::string name = "ckpt-" + std::to_string(restored) + ".h5";
  // With levels, a rank restored from a node-local part is read from its node's directory: its
  // file name must still be that of the step its values belong to.
  const bool levels = !mgr.levels().node_local_directory.empty();
  const std::string& got = *outcome.path;
  const bool path_ok =
      outcome.level == "shared file" || !levels
          ? got == dir + "/" + name
          : got.size() > name.size() &&
                got.compare(got.size() - name.size() - 1, name.size() + 1, "/" + name) == 0;
  const int64_t bad = s.comm().allreduce_sum(count_mismatches(m, s, restored));
  const int64_t paths_bad = s.comm().allreduce_sum(int64_t{path_ok ? 0 : 1});
  if (levels) {
    // One line per rank: which level served it (the multilevel tests check each rank's).
    std::printf("crash_saver: rank %d restored step %lld at level '%s' from %s\n", s.rank(),
                static_cast<long long>(restored), outcome.level.c_str(), got.c_str());
    std::fflush(stdout);
    s.comm().barrier();
  }
  if (s.rank() == 0) {
    std::printf("crash_saver: manager restored step %lld from %s (skipped %zu)\n",
                static_cast<long long>(restored), got.c_str(), outcome.skipped.size());
    if (levels) {
      std::string nodes;
      for (int n : outcome.rebuilt_nodes) nodes += (nodes.empty() ? "" : " ") + std::to_string(n);
      std::printf("crash_saver: rebuilt nodes: %s\n", nodes.empty() ? "(none)" : nodes.c_str());
      for (const SkippedCheckpoint& k : outcome.skipped)
        std::printf("crash_saver: skipped %s: %s\n", k.path.c_str(), k.reason.c_str());
    }
    if (paths_bad != 0)
      std::fprintf(stderr, "crash_saver: %lld rank(s) restored a file not named %s\n",
                   static_cast<long long>(paths_bad), name.c_str());
    if (bad != 0)
      std::fprintf(stderr, "crash_saver: %lld mismatching values after the restore\n",
                   static_cast<long long>(bad));
  }
  return bad == 0 && paths_bad == 0 ? 0 : 1;
}

int run_manager_save(const Session& s, const std::string& dir, int64_t step, SaveMode mode) {
  Model m(s);
  CheckpointManager mgr(m.ckpt, dir, {.max_to_keep = kManagerKeep});
  int64_t restored = 0;
  if (manager_restore(s, m, mgr, dir, restored) != 0) return 1;
  const int64_t last = mode.twice ? step + 1 : step;
  for (int64_t k = step; k <= last; ++k) {
    if (k > step) pause_between_saves(s);
    fill(m, s, k);
    std::optional<std::string> path;
    if (mode.async) {
      path = mgr.save_async(k);
      mgr.wait();
    } else {
      path = mgr.save(k);
    }
    if (s.rank() == 0) {
      std::string names;
      for (const std::string& p : mgr.checkpoints())
        names += " " + p.substr(p.find_last_of('/') + 1);
      std::printf("crash_saver: manager saved step %lld to %s; checkpoints:%s\n",
                  static_cast<long long>(k), path ? path->c_str() : "(nothing)", names.c_str());
    }
    std::fflush(stdout);
    if (!path) return 1;
  }
  return 0;
}

int run_manager_verify(const Session& s, const std::string& dir, int64_t step) {
  Model m(s);
  CheckpointManager mgr(m.ckpt, dir, {.max_to_keep = kManagerKeep});
  int64_t restored = 0;
  const int rc = manager_restore(s, m, mgr, dir, restored);
  if (rc == 0 && restored != step && s.rank() == 0)
    std::fprintf(stderr, "crash_saver: restore_or_initialize restored step %lld, expected %lld\n",
                 static_cast<long long>(restored), static_cast<long long>(step));
  return rc == 0 && restored == step ? 0 : 1;
}

// "save", "mgr-save", each with optional "-async" then "-twice"; nullopt for other verbs.
std::optional<std::pair<bool, SaveMode>> parse_save_verb(std::string verb) {
  SaveMode mode;
  auto strip = [&verb](const std::string& suffix) {
    if (verb.size() <= suffix.size() ||
        verb.compare(verb.size() - suffix.size(), suffix.size(), suffix) != 0)
      return false;
    verb.resize(verb.size() - suffix.size());
    return true;
  };
  mode.twice = strip("-twice");
  mode.async = strip("-async");
  if (verb == "save") return std::pair{false, mode};
  if (verb == "mgr-save") return std::pair{true, mode};
  return std::nullopt;
}

int run(const Session& s, const std::string& verb, const std::string& where, int64_t step) {
  if (const auto save = parse_save_verb(verb))
    return save->first ? run_manager_save(s, where, step, save->second)
                       : run_save(s, where, step, save->second);
  if (verb == "mgr-verify") return run_manager_verify(s, where, step);
  if (verb == "verify-file") return run_verify(s, where, step);
  const auto latest = latest_checkpoint(s, where);
  const std::string want = where + "/ckpt-" + std::to_string(step) + ".h5";
  if (!latest || *latest != want) {
    if (s.rank() == 0)
      std::fprintf(stderr, "crash_saver: latest checkpoint in %s is %s, expected %s\n",
                   where.c_str(), latest ? latest->c_str() : "(none)", want.c_str());
    return 1;
  }
  return run_verify(s, *latest, step);
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int rc = 2;
  const std::string verb = argc > 1 ? argv[1] : "";
  char* end = nullptr;
  const long long step = argc == 4 ? std::strtoll(argv[3], &end, 10) : 0;
  if (argc != 4 || *end != '\0' || step < 1 ||
      (!parse_save_verb(verb) && verb != "verify" && verb != "verify-file" &&
       verb != "mgr-verify")) {
    if (rank == 0)
      std::fprintf(stderr,
                   "usage: crash_saver save[-async][-twice]|verify|mgr-save[-async][-twice]|"
                   "mgr-verify DIR STEP | verify-file FILE STEP\n");
  } else {
    try {
      // CRASH_SAVER_CHECK_FREE_SPACE=0: a full disk is found by the writes themselves
      // (disk_full_test.sh runs each case both ways).
      SessionOptions options;
      if (const char* check = std::getenv("CRASH_SAVER_CHECK_FREE_SPACE"))
        options.check_free_space = std::string(check) != "0";
      Session session(MPI_COMM_WORLD, options);
      rc = run(session, verb, argv[2], step);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crash_saver: rank %d: %s %s failed: %s\n", rank, verb.c_str(), argv[2],
                   e.what());
      rc = 1;
    }
  }
  std::fflush(stdout);
  MPI_Finalize();
  return rc;
}
