// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/save.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

#include "checkpoint/graph_walk.hpp"
#include "checkpoint/packed_stream.hpp"
#include "checkpoint/plan_cache.hpp"
#include "checkpoint/save_plan.hpp"
#include "comm/wire.hpp"
#include "core/log.hpp"
#include "core/trace.hpp"
#include "storage/checksum.hpp"
#include "storage/container_writer.hpp"
#include "storage/durable_file.hpp"
#include "storage/fault_injection.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/manifest.hpp"
#include "storage/manifest_checks.hpp"

namespace cairn::detail {
namespace {

constexpr const char* kFormatAttribute = "cairn_format";
// Ranks writing at least this many dataset bytes compute checksums while writing (see commit_save).
constexpr int64_t kOverlapChecksumBytes = int64_t{16} << 20;

// On a signature mismatch, rank 0 learns every rank's signature and names the first difference.
void agree_on_signature(const Comm& comm, const std::string& signature, const std::string& path) {
  const uint64_t hash = checksum_bytes(signature.data(), signature.size());
  const auto low = static_cast<uint64_t>(comm.allreduce_min(static_cast<int64_t>(hash >> 1)));
  const auto high = static_cast<uint64_t>(comm.allreduce_max(static_cast<int64_t>(hash >> 1)));
  if (low == high) return;
  std::vector<std::string> all;
  for (const wire::Message& m : wire::gather(comm, signature, 0))
    all.push_back(m.get<std::string>());
  comm.run_agreed([&] {
    if (comm.rank() != 0) return;
    for (std::size_t r = 1; r < all.size(); ++r) {
      if (all[r] == all[0]) continue;
      std::size_t pos = 0;
      while (pos < all[0].size() && pos < all[r].size() && all[0][pos] == all[r][pos]) ++pos;
      auto line_at = [&](const std::string& s) {
        const std::size_t begin = s.rfind('\n', pos == 0 ? 0 : pos - 1);
        const std::size_t start = begin == std::string::npos || pos == 0 ? 0 : begin + 1;
        return s.substr(start, s.find('\n', start) - start);
      };
      throw Error(ErrorCode::kShardMismatch,
                  "ranks disagree on the object graph or the SessionOptions: rank 0 has '" +
                      line_at(all[0]) + "' where rank " + std::to_string(r) + " has '" +
                      line_at(all[r]) +
                      "' (every rank must build the same objects, dtypes, shapes and layouts, "
                      "with the same options)",
                  {.rank = static_cast<int>(r), .checkpoint = path, .operation = "save"});
    }
  });
}

std::string temporary_name(const Comm& comm, const std::string& path) {
  wire::Message id;
  if (comm.rank() == 0)
    id = std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
  wire::broadcast(comm, id, 0);
  return path + ".tmp-" + id.get<std::string>();
}

// Returns the bytes of metadata (the packed-region index) this rank wrote.
int64_t write_data(ContainerWriter& writer, const SavePlan& plan, int rank, IoMode mode,
                   const std::vector<std::size_t>& dataset_of_tensor, std::size_t packed_dataset,
                   std::size_t packed_ranks_dataset, const std::vector<int64_t>& region_offsets,
                   const std::vector<int64_t>& region_sizes) {
  const bool collective = mode == IoMode::kCollective;
  std::vector<int64_t> calls(plan.max_writes.size(), 0);
  std::size_t dataset_writes = 0;
  for (const LocalWrite& w : plan.writes) dataset_writes += plan.tensors[w.tensor].packed ? 0 : 1;
  // The crash-test hook fires halfway through this rank's dataset writes, or before its packed
  // write if it has at most one dataset write.
  const std::size_t halfway = dataset_writes / 2;
  std::size_t done = 0;
  if (halfway == 0) fault_point("during_data", rank);
  for (const LocalWrite& w : plan.writes) {
    if (plan.tensors[w.tensor].packed) continue;
    const std::size_t ds = dataset_of_tensor[w.tensor];
    writer.write(ds, w.written.box, w.buffer, w.buffer_box);
    ++calls[ds];
    if (++done == halfway) fault_point("during_data", rank);
  }
  if (collective)
    for (std::size_t ds = 0; ds < calls.size(); ++ds)
      for (int64_t k = calls[ds]; k < plan.max_writes[ds]; ++k) writer.write_nothing(ds);
  if (packed_dataset == SIZE_MAX) return 0;
  int64_t index_bytes = 0;
  // Where each rank's region starts (and, last, where the last one ends): a reader at the same
  // job size starts reading its region before it has the manifest.
  if (rank == 0) {
    std::vector<int64_t> bounds = region_offsets;
    bounds.push_back(region_offsets.back() + region_sizes.back());
    const Box whole = Box::whole({static_cast<int64_t>(bounds.size())});
    writer.write(packed_ranks_dataset, whole, bounds.data(), whole);
    index_bytes = static_cast<int64_t>(bounds.size() * sizeof(int64_t));
  } else if (collective) {
    writer.write_nothing(packed_ranks_dataset);
  }
  const auto me = static_cast<std::size_t>(rank);
  PackedStream packed(writer, packed_dataset, region_offsets[me], region_sizes[me]);
  for (const LocalWrite& w : plan.writes) {
    if (!plan.tensors[w.tensor].packed) continue;
    const auto esize = static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
    for (const PieceRecord& p : w.written.pieces) packed.add_region(w.buffer, w.buffer_box, p.box, esize);
  }
  for (const LocalBlob& b : plan.blobs)
    packed.add_bytes(reinterpret_cast<const std::byte*>(b.bytes.data()), b.blob.bytes);
  const int64_t made = packed.finish();
  if (collective) {
    int64_t most = 0;
    for (int64_t bytes : region_sizes) most = std::max(most, PackedStream::calls_for(bytes));
    for (int64_t k = made; k < most; ++k) writer.write_nothing(packed_dataset);
  }
  return index_bytes;
}

}  // namespace

PreparedSave prepare_save(const Session& session, const std::shared_ptr<Trackable>& root,
                          const std::string& path, int64_t save_counter, PlanCache* cache) {
  const Comm& comm = session.comm();
  const ErrorContext ctx{.rank = comm.rank(), .checkpoint = path, .operation = "save"};
  PreparedSave prepared{path, save_counter, session.options(), {}, {}, std::chrono::steady_clock::now()};
  PhaseTrace trace("save", comm.rank(), path);
  comm.run_agreed([&] {
    if (path.empty()) throw Error(ErrorCode::kInvalidArgument, "empty checkpoint path", ctx);
    if (comm.rank() == 0) {
      // As tf.train.Checkpoint does, a missing directory is created.
      std::error_code ec;
      std::filesystem::create_directories(parent_directory(path), ec);
      if (ec)
        throw Error(ErrorCode::kIo, "cannot create the checkpoint directory: " + ec.message(), ctx);
    }
    if (std::optional<PreparedSave> reused = cache ? cache->take(root, session) : std::nullopt) {
      prepared.nodes = std::move(reused->nodes);
      prepared.plan = std::move(reused->plan);
      prepared.plan_reused = true;
      return;
    }
    const LiveGraph graph = walk_graph(root);
    trace.mark("walk");
    prepared.plan = make_save_plan(graph, session);
    for (const LiveNode& node : graph.nodes) prepared.nodes.push_back(node.record);
    if (cache) cache->remember(graph, prepared);
  });
  trace.mark(prepared.plan_reused ? "reuse the plan" : "plan");
  agree_on_signature(comm, prepared.plan.signature, path);
  trace.mark("agree on the graph");
  return prepared;
}

SaveStats commit_save(const Comm& comm, PreparedSave& prepared,
                      const std::function<void()>& after_commit) {
  const std::string& path = prepared.path;
  SavePlan& plan = prepared.plan;
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  PhaseTrace trace("save", comm.rank(), path);
  // With many bytes in datasets, checksums are computed on a helper thread while the data is
  // written (they are only needed for the manifest, written last); the manifest's size does not
  // depend on their values (fixed-width hex), so the dataset for it can be created before. With
  // few, they are computed first: one pass less over the manifest on rank 0.
  const int64_t dataset_bytes = dataset_write_bytes(plan);
  const bool overlap_checksums = comm.allreduce_max(dataset_bytes) >= kOverlapChecksumBytes;
  if (!overlap_checksums) comm.run_agreed([&] { compute_checksums(plan); });
  trace.mark("checksums");

  // 2. Rank 0 assembles the manifest from every rank's table.
  const std::vector<int64_t> region_sizes =
      comm.allgather(plan.packed_bytes);
  std::vector<int64_t> region_offsets(region_sizes.size(), 0);
  for (std::size_t r = 1; r < region_sizes.size(); ++r)
    region_offsets[r] = region_offsets[r - 1] + region_sizes[r - 1];
  const int64_t packed_total = region_offsets.back() + region_sizes.back();
  Manifest m;  // rank 0's
  if (comm.rank() == 0) {
    m.library_version = CAIRN_VERSION;
    m.world_size = comm.size();
    m.save_counter = prepared.save_counter;
    m.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    m.packed_bytes = packed_total;
    m.nodes = std::move(prepared.nodes);  // moved, not copied: memory counts on rank 0
    m.tensors = plan.tensors;
    m.states = plan.states;
  }
  // Collective. Fills m's boxes and blobs from every rank's table (again, if called twice) and
  // returns the encoded manifest on rank 0.
  auto assemble_manifest = [&] {
    wire::Message table;
    comm.run_agreed([&] { table = wire::bytes_field(encode_local_table(plan)); });
    std::vector<std::string> tables;
    for (const wire::Message& t : wire::gather(comm, table, 0)) tables.push_back(wire::bytes_of(t));
    std::string text;
    comm.run_agreed([&] {
      if (comm.rank() != 0) return;
      for (TensorRecord& t : m.tensors) t.boxes.clear();
      for (StateRecord& st : m.states) st.blobs.clear();
      merge_local_tables(m, tables, region_offsets);
      tables = {};
      // What readers will check of the tensors, checked before anything is written: ranks whose
      // explicit layouts disagree would otherwise commit overlapping or incomplete tensors.
      // (Checked on the records rather than by decoding the encoded text: as safe, and 20,000
      // tensors' text took a fifth of a second to parse. The codec is tested against the
      // reference one.)
      for (const TensorRecord& t : m.tensors) validate_tensor(t, m, path);
      text = encode_manifest(m);
    });
    return text;
  };
  // The node records go back to the save once encoded, for a plan cache to keep.
  auto release_manifest = [&] {
    if (comm.rank() == 0) prepared.nodes = std::move(m.nodes);
    m = {};
  };
  std::string manifest_text = assemble_manifest();
  if (!overlap_checksums) release_manifest();
  const int64_t manifest_bytes = comm.allreduce_max(static_cast<int64_t>(manifest_text.size()));
  trace.mark("manifest");

  // 3. Write everything into a temporary file; nobody can mistake it for a checkpoint.
  const std::string tmp = temporary_name(comm, path);
  const IoMode write_mode = prepared.options.write_mode;
  std::unique_ptr<ContainerWriter> writer;
  std::vector<std::size_t> dataset_of_tensor(plan.tensors.size(), SIZE_MAX);
  std::size_t packed_dataset = SIZE_MAX, packed_ranks_dataset = SIZE_MAX, manifest_dataset = SIZE_MAX;
  // cairn's own metadata in the file, all of it written by rank 0 (HDF5's is not counted).
  int64_t metadata_bytes_written = 0;
  auto remove_tmp = [&] {
    std::error_code ignored;  // the error being reported matters more than a leftover file
    if (comm.rank() == 0) std::filesystem::remove(tmp, ignored);
  };
  try {
    comm.run_agreed([&] {
      writer = std::make_unique<ContainerWriter>(comm, tmp, write_mode);
      for (std::size_t i = 0; i < plan.tensors.size(); ++i)
        if (!plan.tensors[i].packed)
          dataset_of_tensor[i] = writer->create_dataset(plan.tensors[i].dataset,
                                                        plan.tensors[i].dtype, plan.tensors[i].shape);
      if (packed_total > 0) {
        packed_dataset = writer->create_byte_dataset("/cairn/packed", packed_total);
        packed_ranks_dataset = writer->create_dataset("/cairn/packed_ranks", DType::kI64,
                                                      {static_cast<int64_t>(comm.size()) + 1});
      }
      manifest_dataset = writer->create_byte_dataset("/cairn/manifest", manifest_bytes);
      writer->write_root_attribute(kFormatAttribute, "cairn-checkpoint " + std::to_string(kFormatMajor) +
                                                         "." + std::to_string(kFormatMinor));
      // HDF5's metadata is written now, while nothing else is: after that, a data write that
      // fails (a full disk) leaves close() nothing to write that could fail on some ranks only.
      writer->flush_metadata();
    });
    trace.mark("create datasets");
    fault_point("before_data", comm.rank());
    std::unique_ptr<Error> failure;
    {
      // Only reads the buffers and writes the pieces' checksum fields, which write_data never
      // reads; joined before anything else looks at them.
      std::future<void> checksums;
      if (overlap_checksums) checksums = std::async(std::launch::async, [&plan] { compute_checksums(plan); });
      try {
        metadata_bytes_written +=
            write_data(*writer, plan, comm.rank(), write_mode, dataset_of_tensor, packed_dataset,
                       packed_ranks_dataset, region_offsets, region_sizes);
      } catch (...) {
        // Any exception (std::bad_alloc too) goes through the agreement below: thrown past it
        // on one rank, it would leave the others waiting there.
        failure = std::make_unique<Error>(current_exception_as_error(
            {.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
      }
      if (checksums.valid()) {
        // Its failure goes through the agreement below like a write's: a rank that threw from
        // here would leave the others waiting in it.
        try {
          checksums.get();
        } catch (const std::exception& e) {
          if (!failure)
            failure = std::make_unique<Error>(
                ErrorCode::kInternal, std::string("computing checksums failed: ") + e.what(),
                ErrorContext{.rank = comm.rank(), .checkpoint = path, .operation = "save"});
        }
      }
    }
    trace.mark("write data", plan.packed_bytes + dataset_bytes);
    comm.agree(failure.get());
    if (overlap_checksums) {
      manifest_text = assemble_manifest();
      release_manifest();
      comm.run_agreed([&] {
        if (comm.rank() == 0 && static_cast<int64_t>(manifest_text.size()) != manifest_bytes)
          throw Error(ErrorCode::kInternal,
                      "the manifest changed size once its checksums were filled in (" +
                          std::to_string(manifest_bytes) + " -> " +
                          std::to_string(manifest_text.size()) + " bytes)",
                      {.rank = 0, .checkpoint = path, .operation = "save"});
      });
      trace.mark("manifest with checksums");
    }
    try {
      if (comm.rank() == 0) {
        writer->write_bytes(manifest_dataset, 0, manifest_text.data(), manifest_bytes);
        metadata_bytes_written += manifest_bytes;
      } else if (write_mode == IoMode::kCollective)
        writer->write_nothing(manifest_dataset);
    } catch (...) {
      failure = std::make_unique<Error>(current_exception_as_error(
          {.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
    }
    // Agreed before the collective close: a rank whose write failed must not take a different
    // path through HDF5's collective close than the others, or the job hangs. On a failure every
    // rank throws here, and the catch below discards the file.
    comm.agree(failure.get());
    // Closing is collective and must happen on every rank.
    try {
      writer->close();
    } catch (...) {
      if (!failure)
        failure = std::make_unique<Error>(current_exception_as_error(
            {.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
    }
    writer.reset();
    comm.agree(failure.get());
    trace.mark("flush and close");
    fault_point("after_data", comm.rank());

    // 4. Commit: only rank 0 touches the file system from here; the outcome reaches every rank.
    comm.run_agreed([&] {
      if (comm.rank() != 0) return;
      CommitMark mark{checksum_bytes(manifest_text.data(), manifest_text.size()), manifest_bytes,
                      std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count()};
      const std::string mark_text = encode_commit_mark(mark);
      write_commit_mark(tmp, mark_text);
      metadata_bytes_written += static_cast<int64_t>(mark_text.size());
      fsync_path(tmp);
      fault_point("before_rename", 0);
      durable_rename(tmp, path);
      fault_point("before_state_file", 0);
      if (after_commit) {
        try {
          after_commit();
        } catch (const Error& e) {
          // The error of the state file alone (its temporary name) would not say that the
          // checkpoint itself is complete: name it, so the user knows what is on disk.
          throw Error(e.code(),
                      e.message() + " (checkpoint '" + path +
                          "' is committed, but the directory's state file could not "
                          "record it)",
                      e.context());
        }
      }
    });
    trace.mark("commit");
  } catch (...) {
    if (writer) writer->discard();  // every rank is here: the error was agreed
    writer.reset();
    remove_tmp();
    throw;
  }
  SaveStats stats;
  stats.bytes = comm.allreduce_sum(plan.packed_bytes + dataset_bytes);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - prepared.started).count();
  stats.plan_reused = prepared.plan_reused;
  stats.metadata_bytes_written = metadata_bytes_written;
  if (log_enabled(prepared.options.log, comm.rank(), LogLevel::kInfo))
    log_line(prepared.options.log, comm.rank(), LogLevel::kInfo,
             "saved '" + path + "' (counter " + std::to_string(prepared.save_counter) + ", " +
                 std::to_string(comm.size()) + " ranks): " + describe_bytes(stats.bytes) + " in " +
                 describe_seconds(stats.seconds) + ", " +
                 describe_rate(stats.bytes, stats.seconds) + ", level: shared file");
  return stats;
}

SaveStats save_container(const Session& session, const std::shared_ptr<Trackable>& root,
                         const std::string& path, int64_t save_counter,
                         const std::function<void()>& after_commit, PlanCache* cache) {
  wait_for_background_saves();
  PreparedSave prepared = prepare_save(session, root, path, save_counter, cache);
  SaveStats stats;
  try {
    stats = commit_save(session.comm(), prepared, after_commit);
  } catch (...) {
    if (cache) cache->clear();
    throw;
  }
  if (cache) cache->keep(std::move(prepared));
  return stats;
}

}  // namespace cairn::detail
