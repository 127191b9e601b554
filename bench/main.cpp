// SPDX-License-Identifier: Apache-2.0
// cairn_bench: save and restore throughput of cairn against the raw MPI-IO ceiling of the same
// machine, measured in the same run (see docs/performance.md). Usually started by scripts/bench.
//
//   mpirun -n N cairn_bench --workload W1|W2|W3|W2S|all --repeat K [--quick] --dir DIR [--scaling]
//   mpirun -n N cairn_bench --workload W1 --levels [--node-local-dir DIR] --repeat K --dir DIR
//   cairn_bench --table FILE   (the table of the median lines in FILE, no MPI job needed)
//
// Prints one JSON object per line per run and per workload median (run = "median"), then a table.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "bench_util.hpp"
#include "cairn/cairn.hpp"
#include "levels.hpp"
#include "raw_io.hpp"
#include "report.hpp"
#include "trace_capture.hpp"
#include "workloads.hpp"

namespace cairn::bench {
namespace {

using nlohmann::json;

struct Options {
  std::vector<std::string> workloads;
  int repeat = 3;
  bool quick = false;
  std::string dir = "cairn-bench-data";
  int64_t tensors = 0;
  std::string io_mode = "independent";
  bool keep = false;
  bool async = false;
  bool replicated = false;
  std::string replicated_reads = "every-rank";  // SessionOptions::replicated_reads
  double warm_factor = 1.5;
  int64_t read_ahead_mib = -1;  // -1: the library's default
  // Metadata scaling (scripts/bench --scaling): every save plans anew (a job's first save), and
  // rank 0's phase times come from the library's own trace (CAIRN_TRACE=1).
  bool scaling = false;
  // Multi-level checkpointing (scripts/bench --levels, W1 only): level 1 under node_local_dir.
  bool levels = false;
  std::string node_local_dir = "/dev/shm";
};

constexpr double kMiB = 1048576.0;

/// Asynchronous save (--async): the caller's blocked time (planning and staging copy), the time to
/// the durable commit, and for comparison a plain memcpy of the rank's bytes into a warm buffer.
AsyncTimes measure_async_save(Checkpoint& ckpt, const Model& model, std::vector<std::byte>& scratch,
                              const std::string& path) {
  MPI_Comm comm = ckpt.session().comm().get();
  AsyncTimes times;
  idle_barrier(comm);
  const double t0 = now();
  ckpt.write_async(path);
  times.blocked_s = max_over(comm, now() - t0);
  ckpt.wait();
  times.commit_s = max_over(comm, now() - t0);
  // The copy a staging snapshot makes, alone: as much of the rank's bytes as `scratch` holds.
  std::size_t copied = 0;
  const double t1 = now();
  for (const auto& var : model.variables) {
    const auto bytes = var->bytes();
    const std::size_t n = std::min(bytes.size(), scratch.size() - copied);
    std::memcpy(scratch.data() + copied, bytes.data(), n);
    copied += n;
    if (copied == scratch.size()) break;
  }
  times.memcpy_s = max_over(comm, now() - t1);
  return times;
}

void emit(int rank, const json& j) {
  if (rank != 0) return;
  std::cout << j.dump() << std::endl;
}

// Runs the repeats of one workload: saves with every rank of MPI_COMM_WORLD, restores with all of
// them (W1, W2, W2S) or with all but the last (W3, a restore on fewer ranks than saved).
// A phase's seconds as TraceCapture found it; absent means the library did not report it.
std::optional<double> phase(const std::map<std::string, double>& phases, const char* name) {
  auto it = phases.find(name);
  return it == phases.end() ? std::nullopt : std::optional<double>(it->second);
}

std::optional<double> sum(std::optional<double> a, std::optional<double> b) {
  if (!a && !b) return std::nullopt;
  return a.value_or(0) + b.value_or(0);
}

std::vector<json> run_workload(const Options& opt, const std::string& name) {
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const bool reshard = name == "W3";
  if (reshard && world_size < 2)
    throw Error(ErrorCode::kInvalidArgument,
                "W3 restores on one rank fewer than it saves: run it on at least 2 ranks");
  const int load_size = reshard ? world_size - 1 : world_size;
  const bool loader = world_rank < load_size;
  MPI_Comm load_comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, loader ? 0 : MPI_UNDEFINED, world_rank, &load_comm);

  SessionOptions session_options;
  session_options.write_mode =
      opt.io_mode == "collective" ? IoMode::kCollective : IoMode::kIndependent;
  if (opt.read_ahead_mib >= 0) session_options.read_ahead_bytes = opt.read_ahead_mib << 20;
  session_options.replicated_reads = opt.replicated_reads == "once-per-node"
                                         ? ReplicatedReads::kOncePerNode
                                         : ReplicatedReads::kEveryRank;
  Session save_session(MPI_COMM_WORLD, session_options);
  std::unique_ptr<Session> load_session;
  if (loader) load_session = std::make_unique<Session>(load_comm, session_options);

  const WorkloadSpec spec = make_spec(name, opt.quick, opt.tensors, world_size);
  Model source = build_model(save_session, spec, opt.replicated);
  fill_model(source);
  Model target;
  if (loader) target = build_model(*load_session, spec, opt.replicated);
  auto new_save_ckpt = [&] {
    return std::make_unique<Checkpoint>(save_session,
                                        Checkpoint::Children{{"model", source.module}});
  };
  std::unique_ptr<Checkpoint> save_ckpt = new_save_ckpt();
  std::unique_ptr<Checkpoint> load_ckpt;
  if (loader)
    load_ckpt =
        std::make_unique<Checkpoint>(*load_session, Checkpoint::Children{{"model", target.module}});

  // The raw ceiling moves the same total bytes: each rank an equal contiguous share.
  auto share = [&](int rank, int n) {
    const int64_t begin = spec.total_bytes * rank / n, end = spec.total_bytes * (rank + 1) / n;
    return std::pair<int64_t, int64_t>{begin, end - begin};
  };
  const auto [write_offset, write_bytes] = share(world_rank, world_size);
  const auto [read_offset, read_bytes] =
      loader ? share(world_rank, load_size) : std::pair<int64_t, int64_t>{0, 0};
  std::vector<std::byte> raw(static_cast<std::size_t>(std::max(write_bytes, read_bytes)));
  for (std::size_t i = 0; i < raw.size(); i += 4096) raw[i] = std::byte(i >> 12);

  const std::string raw_path = opt.dir + "/raw-" + name + ".bin";
  const std::string ckpt_path = opt.dir + "/cairn-" + name + ".h5";
  const std::string async_path = opt.dir + "/cairn-async-" + name + ".h5";
  const double save_bound =
      64 + 0.05 * static_cast<double>(max_over(MPI_COMM_WORLD, source.local_bytes)) / kMiB;
  int64_t min_target = loader ? target.local_bytes : INT64_MAX;
  MPI_Allreduce(MPI_IN_PLACE, &min_target, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  const double load_bound = 64 + static_cast<double>(min_target) / kMiB;

  // Every timed step starts alike: no dirty pages, a cold page cache, and recently used free
  // memory for the page cache it is about to fill (see warm_free_memory).
  const int64_t largest = std::max({write_bytes, read_bytes, source.local_bytes});
  const int64_t warm_bytes =
      static_cast<int64_t>(opt.warm_factor * static_cast<double>(largest)) + (int64_t{64} << 20);
  bool cold = true;
  auto prepare = [&] {
    cold = drop_caches(MPI_COMM_WORLD) && cold;
    if (opt.warm_factor > 0) warm_free_memory(MPI_COMM_WORLD, opt.dir, warm_bytes);
  };

  // The first asynchronous save allocates and touches the staging memory that later ones reuse:
  // timed once here, apart from the steady-state runs.
  std::optional<double> first_async_blocked_s;
  if (opt.async) {
    if (world_rank == 0) std::filesystem::remove(async_path);
    prepare();
    first_async_blocked_s = measure_async_save(*save_ckpt, source, raw, async_path).blocked_s;
  }

  std::vector<json> runs;
  for (int run = 0; run < opt.repeat; ++run) {
    Measurement m;
    m.workload = opt.replicated ? name + "R" : name;
    m.replicated_reads = opt.replicated_reads;
    m.ranks = load_size;
    m.save_ranks = world_size;
    m.run = run;
    m.bytes = spec.total_bytes;
    m.tensors = static_cast<int64_t>(spec.shapes.size());
    m.save_extra_bound_mib = save_bound;
    m.load_extra_bound_mib = load_bound;
    cold = true;
    prewarm(raw.data(), raw.size());

    // Writes: the raw ceiling both ways and cairn, in alternating order from run to run.
    auto raw_writes = [&] {
      prepare();
      m.raw_write_coll_s =
          raw_write(MPI_COMM_WORLD, raw_path, raw.data(), write_bytes, write_offset, true).seconds;
      prepare();
      m.raw_write_indep_s =
          raw_write(MPI_COMM_WORLD, raw_path, raw.data(), write_bytes, write_offset, false).seconds;
    };
    int64_t save_peak = 0;
    auto cairn_save = [&] {
      if (world_rank == 0) std::filesystem::remove(ckpt_path);
      if (opt.scaling) {
        save_ckpt.reset();  // the plan cache goes with it: this save plans
        save_ckpt = new_save_ckpt();
      }
      prepare();
      reset_peak_rss();
      const int64_t base = current_rss();
      TraceCapture trace(opt.scaling && world_rank == 0);
      const double t0 = now();
      save_ckpt->write(ckpt_path);
      const double seconds = now() - t0;
      const auto phases = trace.finish();
      m.save_s = max_over(MPI_COMM_WORLD, seconds);
      save_peak = peak_rss();
      m.save_extra_mib = static_cast<double>(max_over(MPI_COMM_WORLD, save_peak - base)) / kMiB;
      m.plan_reused = save_ckpt->last_save().plan_reused;
      if (world_rank == 0) {
        m.meta.written_rank0_bytes = save_ckpt->last_save().metadata_bytes_written;
        m.meta.rank0_save_peak_mib = static_cast<double>(save_peak) / kMiB;
        if (opt.scaling) {
          m.meta.walk_plan_s = sum(phase(phases, "save: walk"), phase(phases, "save: plan"));
          // Format 2.0: rank 0 builds the table, then encodes it with the gathered checksums.
          m.meta.assemble_manifest_s =
              sum(phase(phases, "save: table"), phase(phases, "save: records and table"));
        }
      }
    };
    auto async_save = [&] {
      if (world_rank == 0) std::filesystem::remove(async_path);
      prepare();
      m.async = measure_async_save(*save_ckpt, source, raw, async_path);
      m.async.staging_mib =
          static_cast<double>(max_over(MPI_COMM_WORLD, save_ckpt->async_staging_bytes())) / kMiB;
      m.async.first_blocked_s = first_async_blocked_s;
    };
    // Writes in rotating order from run to run, each to a fresh file: which one goes first
    // matters on this machine (file-system and page-cache state), not what is being measured.
    std::vector<std::function<void()>> writes{raw_writes, cairn_save};
    if (opt.async) writes.push_back(async_save);
    for (std::size_t k = 0; k < writes.size(); ++k)
      writes[(k + static_cast<std::size_t>(run)) % writes.size()]();

    // Reads, cold, in alternating order; ranks outside the restore wait idle.
    int64_t load_peak = 0, mismatches = 0;
    auto raw_reads = [&] {
      prepare();
      if (loader)
        m.raw_read_coll_s =
            raw_read(load_comm, raw_path, raw.data(), read_bytes, read_offset, true).seconds;
      idle_barrier(MPI_COMM_WORLD);
      prepare();
      if (loader)
        m.raw_read_indep_s =
            raw_read(load_comm, raw_path, raw.data(), read_bytes, read_offset, false).seconds;
      idle_barrier(MPI_COMM_WORLD);
    };
    auto cairn_load = [&] {
      if (loader) clear_model(target);
      prepare();
      if (loader) {
        reset_peak_rss();
        const int64_t base = current_rss();
        TraceCapture trace(opt.scaling && world_rank == 0);
        const double t0 = now();
        RestoreStatus status = load_ckpt->read(ckpt_path);
        double load_s = now() - t0;
        const auto phases = trace.finish();
        status.assert_consumed();  // a collective check, not timed
        MPI_Allreduce(MPI_IN_PLACE, &load_s, 1, MPI_DOUBLE, MPI_MAX, load_comm);
        m.load_s = load_s;
        load_peak = peak_rss();
        m.load_extra_mib = static_cast<double>(max_over(load_comm, load_peak - base)) / kMiB;
        mismatches = count_mismatches(target);
        const int64_t read = load_ckpt->last_restore().metadata_bytes_read;
        m.load_file_bytes = sum_over(load_comm, load_ckpt->last_restore().bytes_read_from_file);
        m.load_peer_bytes =
            sum_over(load_comm, load_ckpt->last_restore().bytes_received_from_peers);
        m.meta.read_max_bytes = max_over(load_comm, read);
        m.meta.read_min_bytes = -max_over(load_comm, -read);
        if (world_rank == 0) {
          m.meta.rank0_load_peak_mib = static_cast<double>(load_peak) / kMiB;
          if (opt.scaling) {
            m.meta.read_manifest_s = phase(phases, "restore: open and read the manifest");
            m.meta.match_s = phase(phases, "restore: match and validate");
          }
        }
      }
      idle_barrier(MPI_COMM_WORLD);
    };
    // Restart: the variables are allocated anew (the previous ones freed first), then restored.
    auto cairn_restart = [&] {
      prepare();
      if (loader) {
        load_ckpt.reset();
        target = Model{};
        const double t0 = now();
        target = build_model(*load_session, spec, opt.replicated);
        double alloc_s = now() - t0;
        load_ckpt = std::make_unique<Checkpoint>(*load_session,
                                                 Checkpoint::Children{{"model", target.module}});
        TraceCapture untraced(opt.scaling && world_rank == 0);  // only the load above is traced
        const double t1 = now();
        RestoreStatus status = load_ckpt->read(ckpt_path);
        double restart_load_s = now() - t1;
        untraced.finish();
        status.assert_consumed();
        MPI_Allreduce(MPI_IN_PLACE, &alloc_s, 1, MPI_DOUBLE, MPI_MAX, load_comm);
        MPI_Allreduce(MPI_IN_PLACE, &restart_load_s, 1, MPI_DOUBLE, MPI_MAX, load_comm);
        m.alloc_s = alloc_s;
        m.restart_load_s = restart_load_s;
        mismatches += count_mismatches(target);
      }
      idle_barrier(MPI_COMM_WORLD);
    };
    auto raw_fresh_read = [&] {
      prepare();
      if (loader) {
        auto fresh =
            std::make_unique_for_overwrite<std::byte[]>(static_cast<std::size_t>(read_bytes));
        m.raw_fresh_read_s =
            raw_read(load_comm, raw_path, fresh.get(), read_bytes, read_offset, false).seconds;
      }
      idle_barrier(MPI_COMM_WORLD);
    };
    if (run % 2 == 0) {
      raw_reads();
      cairn_load();
      raw_fresh_read();
      cairn_restart();
    } else {
      cairn_restart();
      raw_fresh_read();
      cairn_load();
      raw_reads();
    }
    m.cold = cold;
    m.verified = sum_over(MPI_COMM_WORLD, mismatches) == 0;
    m.load_s = max_over(MPI_COMM_WORLD, m.load_s);
    m.raw_read_coll_s = max_over(MPI_COMM_WORLD, m.raw_read_coll_s);
    m.raw_read_indep_s = max_over(MPI_COMM_WORLD, m.raw_read_indep_s);
    m.load_extra_mib = max_over(MPI_COMM_WORLD, m.load_extra_mib);
    m.alloc_s = max_over(MPI_COMM_WORLD, m.alloc_s);
    m.restart_load_s = max_over(MPI_COMM_WORLD, m.restart_load_s);
    m.raw_fresh_read_s = max_over(MPI_COMM_WORLD, m.raw_fresh_read_s);
    m.peak_rss_mib =
        static_cast<double>(max_over(MPI_COMM_WORLD, std::max(save_peak, load_peak))) / kMiB;
    if (world_rank == 0) {
      m.file_bytes = static_cast<int64_t>(std::filesystem::file_size(ckpt_path));
      m.manifest_bytes = static_cast<int64_t>(CheckpointReader(ckpt_path).manifest_json().size());
    }
    runs.push_back(to_json(m));
    emit(world_rank, runs.back());
  }
  if (world_rank == 0 && !opt.keep) {
    std::filesystem::remove(raw_path);
    std::filesystem::remove(ckpt_path);
    std::filesystem::remove(async_path);
  }
  if (load_comm != MPI_COMM_NULL) MPI_Comm_free(&load_comm);
  return runs;
}

int print_table_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    std::cerr << "cairn_bench: cannot read " << file << "\n";
    return 2;
  }
  std::vector<json> medians;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("run", json()) == "median") medians.push_back(j);
  }
  print_table(std::cout, medians);
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) {
  using namespace cairn::bench;
  Options opt;
  std::string table_file;
  CLI::App app{"cairn benchmark: save and restore against the raw MPI-IO ceiling"};
  app.add_option("--workload", opt.workloads, "W1, W2, W3, W2S or all (W1 W2 W3); repeatable")
      ->default_str("all");
  app.add_option("--repeat", opt.repeat, "runs per workload (medians are reported)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", opt.quick, "small sizes (a smoke test)");
  app.add_option("--dir", opt.dir, "where the files go (a real file system, not tmpfs)");
  app.add_option("--tensors", opt.tensors, "tensor count of W2 and W2S");
  app.add_option(
      "--read-ahead-mib", opt.read_ahead_mib,
      "SessionOptions::read_ahead_bytes in MiB for the restores (0: off; default: the library's)");
  app.add_option("--io-mode", opt.io_mode, "cairn's write mode")
      ->check(CLI::IsMember({"independent", "collective"}));
  app.add_flag("--keep", opt.keep, "keep the last files written");
  app.add_flag("--replicated", opt.replicated,
               "every tensor replicated (each restoring rank needs all of it); the workload is "
               "reported with an R suffix, e.g. W2R");
  app.add_option("--replicated-reads", opt.replicated_reads,
                 "SessionOptions::replicated_reads for the restores (once-per-node: pieces several "
                 "ranks of a node need are read by one and broadcast)")
      ->check(CLI::IsMember({"every-rank", "once-per-node"}));
  app.add_flag("--async", opt.async,
               "also time an asynchronous save (async_* and memcpy_s fields)");
  app.add_option("--warm-factor", opt.warm_factor,
                 "scratch bytes written and deleted before each timed step, per byte of the rank's "
                 "share (0: none)");
  app.add_flag("--scaling", opt.scaling,
               "metadata scaling: plan every save anew and record rank 0's traced phases");
  app.add_flag("--levels", opt.levels,
               "W1 with multi-level checkpointing: node-local saves with a partner copy, the "
               "drain, the restart from the partner copy, against their floors (l1_* fields)");
  app.add_option("--node-local-dir", opt.node_local_dir,
                 "--levels: level 1's directory, a RAM disk (tmpfs)");
  app.add_option("--table", table_file, "print the table of the median lines in FILE and exit");
  CLI11_PARSE(app, argc, argv);
  if (!table_file.empty()) return print_table_file(table_file);
  if (opt.workloads.empty() || (opt.workloads.size() == 1 && opt.workloads[0] == "all"))
    opt.workloads = {"W1", "W2", "W3"};

  // Before MPI and any thread starts: the library reads it when a save or restore begins.
  if (opt.scaling) ::setenv("CAIRN_TRACE", "1", 1);
  if (opt.levels && opt.workloads != std::vector<std::string>{"W1"}) {
    std::cerr << "cairn_bench: --levels runs W1 only\n";
    return 2;
  }
  int provided = 0;
  // Asynchronous saves, and the levels' background drain, need MPI_THREAD_MULTIPLE.
  MPI_Init_thread(&argc, &argv,
                  opt.async || opt.levels ? MPI_THREAD_MULTIPLE : MPI_THREAD_SERIALIZED, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int rc = 0;
  try {
    if (rank == 0) std::filesystem::create_directories(opt.dir);
    MPI_Barrier(MPI_COMM_WORLD);
    std::vector<nlohmann::json> medians;
    for (const std::string& w : opt.workloads) {
      if (opt.levels) {
        LevelsConfig config{.repeat = opt.repeat,
                            .quick = opt.quick,
                            .dir = opt.dir,
                            .node_local_dir = opt.node_local_dir,
                            .warm_factor = opt.warm_factor};
        medians.push_back(levels_median(run_levels(config)));
        emit(rank, medians.back());
        continue;
      }
      medians.push_back(median_json(run_workload(opt, w)));
      emit(rank, medians.back());
    }
    if (rank == 0) print_table(std::cout, medians);
  } catch (const std::exception& e) {
    std::cerr << "cairn_bench (rank " << rank << "): " << e.what() << std::endl;
    rc = 1;
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
