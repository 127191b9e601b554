// SPDX-License-Identifier: Apache-2.0
// quickstart: save a small sharded model on N ranks, restore it on M ranks with layouts made for
// M, and verify every element and the opaque state.
//
//   mpirun -n 4 quickstart save DIR      # fills deterministic values, trains 3 Adam steps, saves
//   mpirun -n 3 quickstart restore DIR   # restores the newest checkpoint in DIR and verifies it
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"

namespace {

using namespace cairn;

// The value every element has after the save, from the variable's id and its global index.
double expected_value(int id, int64_t index) {
  return id * 1000.0 + static_cast<double>(index % 997) * 0.5;
}

// A data loader's position. Each rank reads its own slice of the data set; when the job size
// changes, the new ranks split the total progress evenly (load_rescaled).
struct LoaderPosition {
  int64_t consumed = 0;
  uint64_t shuffle_seed = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& consumed& shuffle_seed;
  }
};

class LoaderState : public State<LoaderPosition> {
 public:
  LoaderState() : State<LoaderPosition>(StateScope::kPerRank) {}
  bool load_rescaled(const std::vector<std::string>& saved, int rank) override {
    int64_t total = 0;
    uint64_t seed = 0;
    for (const std::string& bytes : saved) {
      load_bytes(bytes);
      total += value().consumed;
      seed = value().shuffle_seed;
    }
    value().consumed = total;  // every rank resumes from the job-wide position
    value().shuffle_seed = seed + static_cast<uint64_t>(rank);
    return true;
  }
};

struct RunInfo {
  int64_t epoch = 0;
  std::string name;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& epoch& name;
  }
};

Layout grid_for(int nranks) {
  int rows = static_cast<int>(std::sqrt(static_cast<double>(nranks)));
  while (nranks % rows != 0) --rows;
  return Layout::grid({rows, nranks / rows});
}

Layout uneven_for(int nranks) {
  // Rank 0 takes two rows, the last rank the rest; ranks in between own nothing.
  std::vector<std::vector<Box>> boxes(static_cast<std::size_t>(nranks));
  if (nranks == 1) {
    boxes[0] = {Box{{0, 0}, {9, 5}}};
  } else {
    boxes[0] = {Box{{0, 0}, {2, 5}}};
    boxes.back() = {Box{{2, 0}, {7, 5}}};
  }
  return Layout::explicit_boxes(std::move(boxes));
}

struct Model {
  std::shared_ptr<Module> root = std::make_shared<Module>();
  std::vector<std::pair<int, std::shared_ptr<Variable>>> variables;  // (id, variable)
  std::shared_ptr<Adam> optimizer;
  std::shared_ptr<LoaderState> loader = std::make_shared<LoaderState>();
  std::shared_ptr<State<RunInfo>> run = std::make_shared<State<RunInfo>>(StateScope::kGlobal);

  explicit Model(const Session& s) {
    auto dense = root->add("dense", std::make_shared<Module>());
    auto add = [&](std::shared_ptr<Module> parent, const char* name, int id, DType dtype,
                   Shape shape, Layout layout) {
      auto v = std::make_shared<Variable>(s, dtype, std::move(shape), std::move(layout));
      parent->track(name, v);
      variables.emplace_back(id, v);
      return v;
    };
    add(dense, "kernel", 1, DType::kF32, {37, 16}, Layout::block(0));
    add(dense, "bias", 2, DType::kF32, {16}, Layout::replicated());
    add(root, "embedding", 3, DType::kF32, {12, 10}, grid_for(s.size()));
    add(root, "head", 4, DType::kF64, {9, 5}, uneven_for(s.size()));
    optimizer = std::make_shared<Adam>(s, Adam::Options{});
  }

  // Visits every local element with its global row-major index.
  template <class Fn>
  static void for_each(Variable& v, Fn&& fn) {
    for (std::size_t b = 0; b < v.local_boxes().size(); ++b) {
      const Box& box = v.local_boxes()[b];
      for (int64_t i = 0; i < box.volume(); ++i) {
        int64_t rem = i, global = 0, stride = 1;
        for (int d = static_cast<int>(box.rank()) - 1; d >= 0; --d) {
          global += (box.offset[d] + rem % box.count[d]) * stride;
          rem /= box.count[d];
          stride *= v.shape()[d];
        }
        fn(b, i, global);
      }
    }
  }

  template <class T>
  static void set(Variable& v, int id) {
    for_each(v, [&](std::size_t b, int64_t i, int64_t g) {
      v.local<T>(b)[i] = static_cast<T>(expected_value(id, g));
    });
  }
  template <class T>
  static int64_t mismatches(Variable& v, int id) {
    int64_t bad = 0;
    for_each(v, [&](std::size_t b, int64_t i, int64_t g) {
      bad += v.local<T>(b)[i] != static_cast<T>(expected_value(id, g));
    });
    return bad;
  }
};

int run_save(const Session& s, const std::string& dir) {
  Model model(s);
  for (auto& [id, v] : model.variables) {
    if (v->dtype() == DType::kF32)
      Model::set<float>(*v, id);
    else
      Model::set<double>(*v, id);
  }
  // Three optimizer steps create the slots; then the slots get known values too.
  for (int step = 0; step < 3; ++step) model.optimizer->begin_step();
  for (auto& [id, v] : model.variables) {
    if (v->dtype() != DType::kF32) continue;
    Model::set<float>(*model.optimizer->add_slot(v, "m"), 100 + id);
    Model::set<float>(*model.optimizer->add_slot(v, "v"), 200 + id);
  }
  model.loader->value() = {1000 + 10 * s.rank(), 77};
  model.run->value() = {5, "quickstart"};
  Checkpoint ckpt(s, {{"model", model.root},
                      {"optimizer", model.optimizer},
                      {"loader", model.loader},
                      {"run", model.run}});
  const double t0 = MPI_Wtime();
  const std::string path = ckpt.save(dir + "/ckpt");
  const double seconds = MPI_Wtime() - t0;
  if (s.rank() == 0)
    std::printf("saved %s on %d ranks in %.3f s (save_counter %lld)\n", path.c_str(), s.size(),
                seconds, static_cast<long long>(ckpt.save_counter()));
  return 0;
}

int run_restore(const Session& s, const std::string& dir) {
  const auto latest = latest_checkpoint(s, dir);
  if (!latest) {
    if (s.rank() == 0) std::fprintf(stderr, "no checkpoint in %s\n", dir.c_str());
    return 1;
  }
  Model model(s);
  Checkpoint ckpt(s, {{"model", model.root},
                      {"optimizer", model.optimizer},
                      {"loader", model.loader},
                      {"run", model.run}});
  RestoreStatus status = ckpt.restore(*latest);
  // Slots are created after the restore, as a training loop would on its first step: deferred
  // restoration fills them on creation, with no collective call.
  int64_t bad = 0, checked = 0;
  for (auto& [id, v] : model.variables) {
    if (v->dtype() == DType::kF32) {
      bad += Model::mismatches<float>(*v, id);
      bad += Model::mismatches<float>(*model.optimizer->add_slot(v, "m"), 100 + id);
      bad += Model::mismatches<float>(*model.optimizer->add_slot(v, "v"), 200 + id);
      checked += 3 * v->local_elements();
    } else {
      bad += Model::mismatches<double>(*v, id);
      checked += v->local_elements();
    }
  }
  status.assert_consumed();
  const int saved_ranks = CheckpointReader(*latest).world_size();
  int64_t expect_consumed = 0;
  for (int r = 0; r < saved_ranks; ++r) expect_consumed += 1000 + 10 * r;
  const bool same_size = saved_ranks == s.size();
  const int64_t want = same_size ? 1000 + 10 * s.rank() : expect_consumed;
  if (model.loader->value().consumed != want) ++bad;
  if (model.run->value().epoch != 5 || model.run->value().name != "quickstart") ++bad;
  if (model.optimizer->iterations() != 3) ++bad;
  const int64_t total_bad = s.comm().allreduce_sum(bad);
  const int64_t total_checked = s.comm().allreduce_sum(checked);
  if (s.rank() == 0) {
    std::printf("restored %s (saved on %d ranks) on %d ranks, save_counter %lld\n", latest->c_str(),
                saved_ranks, s.size(), static_cast<long long>(ckpt.save_counter()));
    std::printf(
        "verified %lld tensor elements (weights and Adam slots, new layouts), "
        "Adam iterations, per-rank loader state (%s), global run state\n",
        static_cast<long long>(total_checked),
        same_size ? "same ranks" : "rescaled by the loader's own rule");
    std::printf("%s: %lld mismatches\n", total_bad == 0 ? "OK" : "FAILED",
                static_cast<long long>(total_bad));
  }
  return total_bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rc = 2;
  try {
    Session session(MPI_COMM_WORLD);
    const std::string verb = argc > 1 ? argv[1] : "";
    if (argc != 3 || (verb != "save" && verb != "restore")) {
      if (session.rank() == 0) std::fprintf(stderr, "usage: quickstart save|restore DIR\n");
    } else {
      rc = verb == "save" ? run_save(session, argv[2]) : run_restore(session, argv[2]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quickstart: %s\n", e.what());
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
