// SPDX-License-Identifier: Apache-2.0
// scripts/bench --levels: W1 saved by a CheckpointManager with levels (a node-local part on a RAM
// disk per rank, each rank its own node, a partner copy on the next rank, a drain to the disk
// directory), against the floors of the same run: plain POSIX writes and MPI sends of the same
// bytes, today's single-file save and cold restore, a memcpy.
#include "levels.hpp"

#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include "bench_util.hpp"
#include "cairn/cairn.hpp"
#include "workloads.hpp"

namespace cairn::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kBlock = int64_t{64} << 20;  // the redundancy engine's default block

void write_all(int fd, const std::byte* data, int64_t bytes, const std::string& path) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd, data, static_cast<std::size_t>(std::min(bytes, kBlock)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(ErrorCode::kIo, "bench: cannot write " + path + ": " + std::strerror(errno));
    data += n;
    bytes -= n;
  }
}

int open_new(const std::string& path) {
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0)
    throw Error(ErrorCode::kIo, "bench: cannot create " + path + ": " + std::strerror(errno));
  return fd;
}

void sync_close(int fd, const std::string& path) {
  if (::fsync(fd) != 0 || ::close(fd) != 0)
    throw Error(ErrorCode::kIo, "bench: cannot sync " + path + ": " + std::strerror(errno));
}

// The floor of the node-local save with partner redundancy: this rank's bytes written with plain
// POSIX calls (write, fsync) to its own directory, then the same bytes sent over MPI to rank r+1,
// which writes them to its directory (fsync). Slowest rank, from a common start.
double l1_floor(MPI_Comm comm, const Model& model, const std::string& dir,
                std::vector<std::byte>& block) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int partner = (rank + 1) % size, from = (rank + size - 1) % size;
  const std::string own = dir + "/rank-" + std::to_string(rank) + ".bin";
  const std::string copy = dir + "/copy-of-" + std::to_string(from) + ".bin";
  idle_barrier(comm);
  const double t0 = now();
  int fd = open_new(own);
  for (const auto& var : model.variables) {
    const auto bytes = var->bytes();
    write_all(fd, bytes.data(), static_cast<int64_t>(bytes.size()), own);
  }
  sync_close(fd, own);

  int64_t mine = model.local_bytes, theirs = 0;
  MPI_Sendrecv(&mine, 1, MPI_INT64_T, partner, 1, &theirs, 1, MPI_INT64_T, from, 1, comm,
               MPI_STATUS_IGNORE);
  // Sent straight from the variables' memory; received a block at a time and written.
  std::vector<MPI_Request> sends;
  for (const auto& var : model.variables) {
    const auto bytes = var->bytes();
    for (std::size_t at = 0; at < bytes.size(); at += static_cast<std::size_t>(kBlock)) {
      const int n = static_cast<int>(std::min<std::size_t>(bytes.size() - at, kBlock));
      sends.emplace_back();
      MPI_Isend(bytes.data() + at, n, MPI_BYTE, partner, 2, comm, &sends.back());
    }
  }
  fd = open_new(copy);
  for (int64_t got = 0; got < theirs;) {
    MPI_Status status;
    MPI_Recv(block.data(), static_cast<int>(block.size()), MPI_BYTE, from, 2, comm, &status);
    int n = 0;
    MPI_Get_count(&status, MPI_BYTE, &n);
    write_all(fd, block.data(), n, copy);
    got += n;
  }
  sync_close(fd, copy);
  MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE);
  const double seconds = now() - t0;
  fs::remove(own);
  fs::remove(copy);
  return max_over(comm, seconds);
}

// A plain copy of the rank's bytes into a warm buffer (as much as `scratch` holds).
void copy_bytes(const Model& model, std::vector<std::byte>& scratch) {
  std::size_t copied = 0;
  for (const auto& var : model.variables) {
    const auto bytes = var->bytes();
    const std::size_t n = std::min(bytes.size(), scratch.size() - copied);
    std::memcpy(scratch.data() + copied, bytes.data(), n);
    copied += n;
    if (copied == scratch.size()) break;
  }
}

double memcpy_seconds(MPI_Comm comm, const Model& model, std::vector<std::byte>& scratch) {
  idle_barrier(comm);
  const double t0 = now();
  copy_bytes(model, scratch);
  return max_over(comm, now() - t0);
}

double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

const char* const kFields[] = {"l1_save_s",
                               "l1_part_s",
                               "l1_floor_s",
                               "l1_retire_s",
                               "l1_wait_retire_s",
                               "l3_save_s",
                               "partner_restore_s",
                               "l3_restore_s",
                               "drain_blocked_s",
                               "drain_save_s",
                               "memcpy_s",
                               "l1_save_ratio",
                               "l1_vs_l3",
                               "partner_vs_l3_restore",
                               "drain_blocked_ratio",
                               "l1_bytes_per_rank",
                               "loop_alone_s",
                               "loop_with_drain_s",
                               "drain_loop_loss_s",
                               "drain_tail_s",
                               "loop_reps"};
const char* const kRatios[] = {"l1_save_ratio", "l1_vs_l3", "partner_vs_l3_restore",
                               "drain_blocked_ratio"};

}  // namespace

std::vector<json> run_levels(const LevelsConfig& config) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2)
    throw Error(ErrorCode::kInvalidArgument,
                "--levels needs at least 2 ranks: each rank is a node and its partner copy goes "
                "to the next one");
  Session session(MPI_COMM_WORLD);
  const WorkloadSpec spec = make_spec("W1", config.quick, 0, size);
  Model source = build_model(session, spec);
  fill_model(source);
  Model target = build_model(session, spec);

  // A fresh level-1 root per job (rank 0's pid), so that nothing of another job is adopted.
  int64_t tag = ::getpid();
  MPI_Bcast(&tag, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  const std::string l1_root = config.node_local_dir + "/cairn-bench-levels-" + std::to_string(tag);
  const std::string l3_dir = config.dir + "/levels-shared";
  const std::string floor_dir = l1_root + "/floor";
  const std::string plain_path = config.dir + "/levels-plain-W1.h5";
  if (rank == 0) {
    fs::remove_all(l1_root);
    fs::remove_all(l3_dir);
    fs::create_directories(floor_dir);
    fs::create_directories(l3_dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  ManagerOptions options;
  options.max_to_keep = 1;
  options.levels.node_local_directory = l1_root;
  options.levels.redundancy = Redundancy::kPartner;
  options.levels.keep_node_local = 1;
  // Odd numbers stay node-local, even ones also drain: one manager times both kinds of save.
  options.levels.shared_every = 2;
  options.levels.rank_per_node = true;

  Checkpoint ckpt(session, {{"model", source.module}});
  CheckpointManager manager(ckpt, l3_dir, options);
  // The CAIRN_* environment overrides (docs/operations.md) would measure another setup than the
  // one reported, and put level 1 where this run neither cleans up nor deletes a node.
  const LevelOptions& used = manager.levels();
  if (used.node_local_directory != l1_root || used.redundancy != Redundancy::kPartner ||
      used.keep_node_local != 1 || used.shared_every != 2 || !used.rank_per_node)
    throw Error(ErrorCode::kInvalidArgument,
                "--levels sets the levels itself: unset CAIRN_NODE_LOCAL_DIR, CAIRN_REDUNDANCY, "
                "CAIRN_KEEP_NODE_LOCAL, CAIRN_SHARED_EVERY and CAIRN_RANK_PER_NODE");

  const int64_t local = source.local_bytes;
  std::vector<std::byte> scratch(static_cast<std::size_t>(local));
  std::vector<std::byte> block(static_cast<std::size_t>(kBlock));
  prewarm(scratch.data(), scratch.size());
  prewarm(block.data(), block.size());
  const int64_t largest = max_over(MPI_COMM_WORLD, local);
  // A level-1 step writes the rank's bytes and its partner's copy: twice the rank's share.
  const int64_t warm_bytes =
      static_cast<int64_t>(config.warm_factor * 2 * static_cast<double>(largest)) +
      (int64_t{64} << 20);
  bool cold = true;
  auto prepare = [&] {
    cold = drop_caches(MPI_COMM_WORLD) && cold;
    if (config.warm_factor > 0) warm_free_memory(MPI_COMM_WORLD, config.dir, warm_bytes);
  };
  auto timed = [&](const std::function<void()>& step) {
    prepare();
    idle_barrier(MPI_COMM_WORLD);
    const double t0 = now();
    step();
    return max_over(MPI_COMM_WORLD, now() - t0);
  };

  // The first saves plan and create directories: untimed, both kinds.
  int64_t number = 1;
  manager.save(number++, false);
  manager.save(number++, false);
  manager.wait();

  std::vector<json> runs;
  for (int run = 0; run < config.repeat; ++run) {
    json j;
    j["workload"] = "W1";
    j["mode"] = "levels";
    j["ranks"] = size;
    j["save_ranks"] = size;
    j["run"] = run;
    j["bytes"] = spec.total_bytes;
    j["tensors"] = static_cast<int64_t>(spec.shapes.size());
    j["l1_bytes_per_rank"] = largest;
    prewarm(scratch.data(), scratch.size());

    double l1_save_s = 0, l1_floor_s = 0, l3_save_s = 0;
    auto l1_save = [&] {
      l1_save_s = timed([&] { manager.save(number++, false); });
      j["l1_part_s"] = max_over(MPI_COMM_WORLD, manager.last_node_local_seconds());
      // The retired copy's deletion runs on after the save returns; it is waited for here, outside
      // every timed step, so that it slows none of them, and its duration is reported.
      const double waited = now();
      manager.wait();
      j["l1_wait_retire_s"] = max_over(MPI_COMM_WORLD, now() - waited);
      j["l1_retire_s"] = max_over(MPI_COMM_WORLD, manager.last_retire_seconds());
    };
    auto floor = [&] {
      prepare();
      l1_floor_s = l1_floor(MPI_COMM_WORLD, source, floor_dir, block);
    };
    auto l3_save = [&] {
      if (rank == 0) fs::remove(plain_path);
      l3_save_s = timed([&] { ckpt.write(plain_path); });
    };
    // In rotating order from run to run, as the other modes do.
    std::vector<std::function<void()>> writes{floor, l1_save, l3_save};
    for (std::size_t k = 0; k < writes.size(); ++k)
      writes[(k + static_cast<std::size_t>(run)) % writes.size()]();

    // A save that drains: the caller is blocked for the level-1 save, then for staging the drain
    // (last_drain_blocked_seconds); the drain itself runs on in the background.
    // A stand-in for the training loop, run alone and right after that save returns, while the
    // drain writes: `loop_reps` copies of the rank's bytes, enough to outlast a shared-file save.
    const double memcpy_s = memcpy_seconds(MPI_COMM_WORLD, source, scratch);
    const int loop_reps = static_cast<int>(
        std::clamp(std::ceil(3 * l3_save_s / std::max(memcpy_s, 1e-6)), 1.0, 64.0));
    auto loop = [&] {
      for (int i = 0; i < loop_reps; ++i) copy_bytes(source, scratch);
    };
    idle_barrier(MPI_COMM_WORLD);
    double t0 = now();
    loop();
    const double loop_alone_s = max_over(MPI_COMM_WORLD, now() - t0);

    if (number % 2 == 1) ++number;  // an even number: this one drains
    prepare();
    idle_barrier(MPI_COMM_WORLD);
    t0 = now();
    manager.save(number++, false);
    const double t1 = now();
    loop();
    const double t2 = now();
    manager.wait();
    const double drain_save_s = max_over(MPI_COMM_WORLD, t1 - t0);
    const double drain_blocked_s = max_over(MPI_COMM_WORLD, manager.last_drain_blocked_seconds());
    const double loop_with_drain_s = max_over(MPI_COMM_WORLD, t2 - t1);
    // The drain outlived the loop: part of its interference was not measured.
    const double drain_tail_s = max_over(MPI_COMM_WORLD, now() - t2);

    // Restarts: one node lost its node-local directory (its part and the partner copy it kept),
    // rebuilt from the partner copy; and today's cold restore of the single shared file.
    int64_t mismatches = 0;
    bool rebuilt = true;
    double partner_restore_s = 0, l3_restore_s = 0;
    auto partner_restore = [&] {
      if (rank == 1) fs::remove_all(l1_root + "/node-1");
      MPI_Barrier(MPI_COMM_WORLD);
      clear_model(target);
      Checkpoint fresh(session, {{"model", target.module}});
      CheckpointManager restarted(fresh, l3_dir, options);
      RestoreOutcome outcome;
      partner_restore_s = timed([&] { outcome = restarted.restore_or_initialize(); });
      const std::string want = rank == 1 ? "partner copy" : "node-local";
      rebuilt = outcome.level == want && outcome.rebuilt_nodes == std::vector<int>{1};
      if (!rebuilt && rank == 1)
        std::cerr << "cairn_bench: the restart after losing node 1 restored from '" << outcome.level
                  << "' (" << outcome.rebuilt_nodes.size()
                  << " node(s) rebuilt), not from the partner copy\n";
      if (outcome.status) outcome.status->assert_consumed();
      mismatches += count_mismatches(target);
    };
    auto l3_restore = [&] {
      clear_model(target);
      Checkpoint fresh(session, {{"model", target.module}});
      std::optional<RestoreStatus> status;
      l3_restore_s = timed([&] { status.emplace(fresh.read(plain_path)); });
      status->assert_consumed();
      mismatches += count_mismatches(target);
    };
    if (run % 2 == 0) {
      partner_restore();
      l3_restore();
    } else {
      l3_restore();
      partner_restore();
    }
    int all_rebuilt = rebuilt ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &all_rebuilt, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

    j["l1_save_s"] = l1_save_s;
    j["l1_floor_s"] = l1_floor_s;
    j["l3_save_s"] = l3_save_s;
    j["partner_restore_s"] = partner_restore_s;
    j["l3_restore_s"] = l3_restore_s;
    j["drain_save_s"] = drain_save_s;
    j["drain_blocked_s"] = drain_blocked_s;
    j["memcpy_s"] = memcpy_s;
    j["loop_reps"] = loop_reps;
    j["loop_alone_s"] = loop_alone_s;
    j["loop_with_drain_s"] = loop_with_drain_s;
    j["drain_loop_loss_s"] = loop_with_drain_s - loop_alone_s;
    j["drain_tail_s"] = drain_tail_s;
    j["l1_save_ratio"] = ratio(l1_save_s, l1_floor_s);
    j["l1_vs_l3"] = ratio(l3_save_s, l1_save_s);
    j["partner_vs_l3_restore"] = ratio(l3_restore_s, partner_restore_s);
    j["drain_blocked_ratio"] = ratio(drain_blocked_s, memcpy_s);
    j["partner_rebuilt"] = all_rebuilt == 1;
    j["cold"] = cold;
    j["verified"] = sum_over(MPI_COMM_WORLD, mismatches) == 0 && all_rebuilt == 1;
    if (rank == 0) std::cout << j.dump() << std::endl;
    runs.push_back(j);
  }
  manager.wait();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    fs::remove_all(l1_root);
    fs::remove_all(l3_dir);
    fs::remove(plain_path);
  }
  return runs;
}

json levels_median(const std::vector<json>& runs) {
  json out = runs.front();
  out["run"] = "median";
  out["runs"] = runs.size();
  bool verified = true, cold = true, rebuilt = true;
  for (const json& r : runs) {
    verified = verified && r.value("verified", false);
    cold = cold && r.value("cold", false);
    rebuilt = rebuilt && r.value("partner_rebuilt", false);
  }
  out["verified"] = verified;
  out["cold"] = cold;
  out["partner_rebuilt"] = rebuilt;
  for (const char* field : kFields) {
    std::vector<double> values;
    for (const json& r : runs)
      if (r.contains(field) && r[field].is_number()) values.push_back(r[field].get<double>());
    if (!values.empty()) out[field] = median(values);
  }
  for (const char* field : kRatios) {
    double lo = 1e300, hi = -1e300;
    for (const json& r : runs) {
      lo = std::min(lo, r.value(field, 0.0));
      hi = std::max(hi, r.value(field, 0.0));
    }
    out[std::string(field) + "_min"] = lo;
    out[std::string(field) + "_max"] = hi;
  }
  return out;
}

void print_levels_table(std::ostream& out, const std::vector<json>& medians) {
  auto cell = [](const json& m, const std::string& field, const char* format) {
    if (!m.contains(field) || !m[field].is_number()) return std::string("-");
    char buf[64];
    std::snprintf(buf, sizeof buf, format, m[field].get<double>());
    return std::string(buf);
  };
  auto row = [&](const json& m, const char* what, const char* num, const char* den,
                 const char* ratio_field, const char* target) {
    char line[200];
    const std::string range = cell(m, std::string(ratio_field) + "_min", "%.2f") + "-" +
                              cell(m, std::string(ratio_field) + "_max", "%.2f");
    std::snprintf(line, sizeof line, "  %-24s %9s %9s %8s %-11s %s\n", what,
                  cell(m, num, "%.3f").c_str(), cell(m, den, "%.3f").c_str(),
                  cell(m, ratio_field, "%.2f").c_str(), range.c_str(), target);
    out << line;
  };
  out << "\nLevels (medians, s; W1, every rank its own node, level 1 on a RAM disk with a partner\n"
         "copy on the next rank, level 3 the disk directory; see docs/performance.md)\n";
  for (const json& m : medians) {
    std::string check = m.value("verified", false) ? "verified" : "NOT VERIFIED";
    if (!m.value("partner_rebuilt", false)) check += ", NOT rebuilt from the partner copy";
    if (!m.value("cold", false)) check += ", warm";
    out << m.value("workload", "?") << " on " << m.value("ranks", 0) << " ranks, "
        << cell(m, "bytes", "%.0f") << " bytes (" << check << ")\n";
    char line[200];
    std::snprintf(line, sizeof line, "  %-24s %9s %9s %8s %-11s %s\n", "", "measured", "against",
                  "ratio", "(min-max)", "target");
    out << line;
    row(m, "l1 save / floor", "l1_save_s", "l1_floor_s", "l1_save_ratio", "<= 1.5");
    row(m, "l3 save / l1 save", "l3_save_s", "l1_save_s", "l1_vs_l3", "> 1");
    row(m, "l3 restore / partner", "l3_restore_s", "partner_restore_s", "partner_vs_l3_restore",
        ">= 2");
    row(m, "drain blocked / memcpy", "drain_blocked_s", "memcpy_s", "drain_blocked_ratio",
        "<= 1.5");
    out << "  a loop of " << cell(m, "loop_reps", "%.0f")
        << " copies of the rank's bytes after the "
        << "draining save: " << cell(m, "loop_alone_s", "%.3f") << " s alone, "
        << cell(m, "loop_with_drain_s", "%.3f") << " s while the drain ran (loss "
        << cell(m, "drain_loop_loss_s", "%.3f") << " s; the drain outlived it by "
        << cell(m, "drain_tail_s", "%.3f") << " s)\n";
  }
}

}  // namespace cairn::bench
