// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/save.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <system_error>

#include "checkpoint/graph_walk.hpp"
#include "checkpoint/packed_stream.hpp"
#include "checkpoint/plan_cache.hpp"
#include "checkpoint/save_metadata.hpp"
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
#include "storage/schema.hpp"

namespace cairn::detail {
namespace {

// Ranks writing at least this many dataset bytes compute checksums while writing (see commit_save).
constexpr int64_t kOverlapChecksumBytes = int64_t{16} << 20;
// From this many packed bytes on a rank, with OpenMP threads to spare, the packed pieces are hashed
// in a parallel pass before the writes rather than in the packing loop: one core hashes the cached
// bytes at 15-19 GB/s (XXH3 here), a parallel pass is bounded by the memory's bandwidth instead.
constexpr int64_t kParallelPackedHashBytes = int64_t{64} << 20;
constexpr int kParallelPackedHashThreads = 4;

bool hash_packed_in_parallel(int64_t packed_bytes) {
  return packed_bytes >= kParallelPackedHashBytes &&
         omp_get_max_threads() >= kParallelPackedHashThreads;
}

// Collective. Agrees that every rank walked and planned (`local_failure`) and that all describe
// the same graph, and keeps this rank's dataset_write_bytes() and the job's largest: one reduction
// when all is well. On a signature mismatch, rank 0 learns every rank's signature and names the
// first difference.
void agree_on_plan(const Comm& comm, PreparedSave& prepared, const Error* local_failure,
                   const std::string& path) {
  const std::string& signature = prepared.plan.signature;
  const auto hash = static_cast<int64_t>(checksum_bytes(signature.data(), signature.size()) >> 1);
  // The largest hash and minus the smallest.
  prepared.dataset_bytes = local_failure ? 0 : dataset_write_bytes(prepared.plan);
  std::vector<int64_t> extremes{hash, -hash, prepared.dataset_bytes};
  comm.allreduce_max_agreed(extremes, local_failure);
  prepared.job_dataset_bytes = extremes[2];
  if (extremes[0] == -extremes[1]) return;
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

// Local. What makes the temporary file's name unique (this process and this moment); the file's
// rank 0's is used by every rank (it travels with the sizes, see MetadataAssembly::size).
std::vector<int64_t> temporary_id() {
  return {static_cast<int64_t>(::getpid()),
          std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007};
}

std::string temporary_name(const std::string& path, const std::vector<int64_t>& id) {
  return path + ".tmp-" + std::to_string(id.at(0)) + "-" + std::to_string(id.at(1));
}

// Writes element `rank` of an index of where each rank's part starts (`begin`), and for the last
// rank also the end of all; one call on every rank. Returns the bytes written.
int64_t write_own_bounds(ContainerWriter& writer, std::size_t dataset, int rank, int nranks,
                         int64_t begin, int64_t bytes) {
  const int64_t bounds[2] = {begin, begin + bytes};
  const int64_t count = rank == nranks - 1 ? 2 : 1;
  const Box mine{{rank}, {count}};
  writer.write(dataset, mine, bounds, mine);
  return count * static_cast<int64_t>(sizeof(int64_t));
}

// Returns the bytes of cairn's metadata (the packed-region index) this rank wrote.
// `file_rank`: this rank's place among the writers of the file; `own_bounds`: it writes its own
// element of the packed-region index (a part's index is written whole by its first rank).
// `hash_packed`: the packed pieces' checksums are computed here, each right after the piece is
// copied into the write buffer, while its bytes are still in the cache (a separate pass read every
// small tensor from memory a second time: 18 ms of W2's 0.25 s save).
int64_t write_data(ContainerWriter& writer, SavePlan& plan, int rank, int file_rank,
                   bool own_bounds, bool hash_packed, IoMode mode,
                   const std::vector<std::size_t>& dataset_of_tensor, std::size_t packed_dataset,
                   std::size_t packed_ranks_dataset, const std::vector<int64_t>& region_offsets,
                   const std::vector<int64_t>& region_sizes,
                   std::vector<std::byte>& packing_buffer) {
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
  // Where this rank's region starts (the last rank: and where it ends): a reader at the same job
  // size starts reading its region before it has the table.
  const auto me = static_cast<std::size_t>(file_rank);
  const int64_t index_bytes = own_bounds ? write_own_bounds(writer, packed_ranks_dataset, rank,
                                                            static_cast<int>(region_offsets.size()),
                                                            region_offsets[me], region_sizes[me])
                                         : 0;
  const int64_t base = writer.file_offset(packed_dataset);
  PackedStream packed(writer, packed_dataset, base, region_offsets[me], region_sizes[me],
                      packing_buffer);
  for (LocalWrite& w : plan.writes) {
    if (!plan.tensors[w.tensor].packed) continue;
    const auto esize = static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
    for (PieceRecord& p : w.written.pieces) {
      packed.add_region(w.buffer, w.buffer_box, p.box, esize);
      if (hash_packed) p.checksum = checksum_region(w.buffer, w.buffer_box, p.box, esize);
    }
  }
  for (const LocalBlob& b : plan.blobs)
    packed.add_bytes(reinterpret_cast<const std::byte*>(b.bytes.data()), b.blob.bytes);
  const int64_t made = packed.finish();
  if (collective) {
    int64_t most = 0;
    for (std::size_t r = 0; r < region_sizes.size(); ++r)
      most = std::max(most, PackedStream::calls_for(base + region_offsets[r], region_sizes[r]));
    for (int64_t k = made; k < most; ++k) writer.write_nothing(packed_dataset);
  }
  return index_bytes;
}

}  // namespace

PreparedSave prepare_save(const Session& session, const std::shared_ptr<Trackable>& root,
                          const std::string& path, int64_t save_counter, PlanCache* cache,
                          const WriterGroup* group) {
  const Comm& comm = session.comm();
  const ErrorContext ctx{.rank = comm.rank(), .checkpoint = path, .operation = "save"};
  PreparedSave prepared{path, save_counter, session.options(),
                        {},   {},           std::chrono::steady_clock::now()};
  PhaseTrace trace("save", comm.rank(), path);
  const std::optional<Error> failure = comm.run_local([&] {
    if (path.empty()) throw Error(ErrorCode::kInvalidArgument, "empty checkpoint path", ctx);
    fault_point("save_plan", comm.rank());
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
      prepared.packing_buffer = std::move(reused->packing_buffer);
      prepared.table = std::move(reused->table);
      prepared.table_bytes = reused->table_bytes;
      prepared.plan_reused = true;
      return;
    }
    const LiveGraph graph = walk_graph(root);
    trace.mark("walk");
    prepared.plan = make_save_plan(graph, session, group);
    for (const LiveNode& node : graph.nodes) prepared.nodes.push_back(node.record);
    if (cache) cache->remember(graph, prepared);
  });
  trace.mark(prepared.plan_reused ? "reuse the plan" : "plan");
  agree_on_plan(comm, prepared, failure ? &*failure : nullptr, path);
  trace.mark("agree on the graph");
  return prepared;
}

namespace {

// The packed dataset, divided among the ranks: rank r's region starts at offsets[r].
struct PackedRegions {
  std::vector<int64_t> sizes;
  std::vector<int64_t> offsets;
  int64_t total = 0;
};

// Local. Every rank's region of a dataset divided among the ranks, from column `column` of the
// rows of `columns` values per rank that Comm::allgather_agreed() returns.
PackedRegions divide_dataset(const std::vector<int64_t>& rows, std::size_t columns,
                             std::size_t column) {
  PackedRegions regions;
  for (std::size_t at = column; at < rows.size(); at += columns) regions.sizes.push_back(rows[at]);
  regions.offsets.assign(regions.sizes.size(), 0);
  for (std::size_t r = 1; r < regions.sizes.size(); ++r)
    regions.offsets[r] = regions.offsets[r - 1] + regions.sizes[r - 1];
  regions.total = regions.offsets.back() + regions.sizes.back();
  return regions;
}

// Local. Writes a part file's whole index of where each job rank's region starts (world_size + 1
// elements): the regions of the part's writers are in job-rank order, and a rank whose data is in
// another part has an empty region. Returns the bytes written.
int64_t write_part_index(ContainerWriter& writer, std::size_t dataset, const PartTarget& part,
                         int job_size, const PackedRegions& regions) {
  std::vector<int64_t> index(static_cast<std::size_t>(job_size) + 1, regions.total);
  std::size_t next = part.writers.size();
  for (int r = job_size - 1; r >= 0; --r) {
    const auto at = static_cast<std::size_t>(r);
    if (next > 0 && part.writers[next - 1] == r) {
      --next;
      index[at] = regions.offsets[next];
    } else {
      index[at] = index[at + 1];
    }
  }
  const Box whole{{0}, {static_cast<int64_t>(index.size())}};
  writer.write(dataset, whole, index.data(), whole);
  return static_cast<int64_t>(index.size() * sizeof(int64_t));
}

// The file's metadata: rank 0's header and table, every rank's record. Their sizes do not depend on
// the checksums (fixed width), so size() runs before the data is written and its datasets are
// created for it; encode() runs once the checksums are known.
class MetadataAssembly {
 public:
  // `job`: the saving job (agreement, world size); `file`: the ranks writing this file (the job,
  // or one node for a part).
  MetadataAssembly(const Comm& job, const Comm& file, const PartTarget* part,
                   PreparedSave& prepared)
      : comm_(job), file_(file), part_(part), prepared_(prepared) {}

  // Collective. The file's first rank builds the table; every rank learns its size, where its
  // packed region and its record go, the header and the temporary file's name, in one agreed
  // allgather over the file (a job of many processes pays per collective, not per value).
  // `failure`: this rank's failure so far, agreed here with the table's.
  void size(std::optional<Error> failure) {
    const SavePlan& plan = prepared_.plan;
    // Agreed before the collective create, which a rank that cannot create the file there (a node
    // whose mount is missing, stale or read-only) would fail alone, leaving the others in it.
    if (!failure)
      failure = comm_.run_local([&] {
        check_directory_usable(
            prepared_.path,
            {.rank = comm_.rank(), .checkpoint = prepared_.path, .operation = "save"});
      });
    if (!failure && file_.rank() == 0 && !kept_table())
      failure = comm_.run_local([&] {
        fault_point("save_table", comm_.rank());
        table_ = make_table(prepared_.nodes, plan, comm_.size());
        table_text_ = encode_table(table_);
      });
    // A part's failure must reach every node, whose ranks gather over their own file.
    if (&file_ != &comm_) {
      comm_.agree(failure ? &*failure : nullptr);
      failure.reset();
    }
    const std::vector<int64_t> id = temporary_id();
    const int64_t created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    // The room left where the file goes, asked once, by the file's first rank (-1: not asked).
    int64_t free_bytes = -1;
    if (file_.rank() == 0 && prepared_.options.check_free_space) {
      const std::optional<int64_t> injected = injected_free_bytes(comm_.rank());
      free_bytes = injected ? *injected : free_bytes_for(prepared_.path);
    }
    constexpr std::size_t kColumns = 9;
    const std::vector<int64_t> rows = file_.allgather_agreed(
        {plan.packed_bytes, record_bytes(plan),
         kept_table() ? prepared_.table_bytes : static_cast<int64_t>(table_text_.size()),
         prepared_.save_counter, created_unix, id[0], id[1], prepared_.dataset_bytes, free_bytes},
        failure ? &*failure : nullptr);
    packed_ = divide_dataset(rows, kColumns, 0);
    records_ = divide_dataset(rows, kColumns, 1);
    // The rest is the file's first rank's. Every rank encodes the same header from it (its inputs
    // are agreed: the options by the plan's signature) to learn its size without a broadcast.
    table_bytes_ = rows[2];
    header_text_ = encode_header(make_header(rows[3], rows[4]));
    temporary_ = temporary_name(prepared_.path, {rows[5], rows[6]});
    // Every rank of the file has the same numbers, so all reach the same verdict (arithmetic, which
    // cannot fail on one rank only), before the file exists: HDF5 cannot close a file whose first
    // metadata write failed (docs/reliability.md).
    data_bytes_ = packed_.total + divide_dataset(rows, kColumns, 7).total;
    needed_bytes_ = data_bytes_ + records_.total + table_bytes_ + header_bytes();
    free_bytes_ = rows[8];
  }

  // Whether the file system told the file's first rank that this save can fit (see size()): the
  // same answer on every rank of the file.
  bool has_room() const noexcept { return fits(needed_bytes_, free_bytes_); }
  // Throws the refusal, naming the rank that asked the file system.
  [[noreturn]] void refuse() const {
    check_free_space(needed_bytes_, free_bytes_, part_ ? part_->writers.front() : 0,
                     prepared_.path);
    throw Error(ErrorCode::kInternal, "a save that fits was refused", {.operation = "save"});
  }

  // Collective. Agrees on `data_failure` (this rank's data writes) and on this rank's record
  // together, then gathers the replicated pieces' and global blobs' entries on the file's first
  // rank, which merges them into its table and encodes it. That rank's failure there is agreed by
  // write_metadata (see failure()).
  void encode(const Error* data_failure) {
    const SavePlan& plan = prepared_.plan;
    const auto me = static_cast<std::size_t>(file_.rank());
    wire::Message entries;
    std::optional<Error> failure;
    if (data_failure)
      failure = *data_failure;
    else
      failure = comm_.run_local([&] {
        fault_point("save_record", comm_.rank());
        record_text_ = encode_record(make_record(plan, comm_.rank(), packed_.offsets[me]));
        if (static_cast<int64_t>(record_text_.size()) != records_.sizes[me])
          throw Error(ErrorCode::kInternal,
                      "the record's size changed once its checksums were filled in (" +
                          std::to_string(records_.sizes[me]) + " -> " +
                          std::to_string(record_text_.size()) + " bytes)",
                      {.rank = comm_.rank(), .checkpoint = prepared_.path, .operation = "save"});
        entries = wire::bytes_field(global_entries(plan, comm_.rank(), packed_.offsets[me]));
      });
    // A part's failure must reach every node; a shared file's rides with the gather's sizes.
    std::vector<wire::Message> gathered;
    if (&file_ != &comm_) {
      comm_.agree(failure ? &*failure : nullptr);
      gathered = wire::gather(file_, entries, 0);
    } else {
      gathered = wire::gather_agreed(file_, entries, 0, failure ? &*failure : nullptr);
    }
    std::vector<std::string> all;
    for (const wire::Message& m : gathered) all.push_back(wire::bytes_of(m));
    if (file_.rank() == 0) table_failure_ = comm_.run_local([&] { encode_table_with(all); });
  }

  // The file's first rank's failure in encode(), not agreed yet; null elsewhere.
  const Error* failure() const noexcept { return table_failure_ ? &*table_failure_ : nullptr; }
  const std::string& header_text() const noexcept { return header_text_; }
  const std::string& table_text() const noexcept { return table_text_; }
  const std::string& record_text() const noexcept { return record_text_; }
  int64_t header_bytes() const noexcept { return static_cast<int64_t>(header_text_.size()); }
  int64_t table_bytes() const noexcept { return table_bytes_; }
  /// The data bytes every rank of the file writes (not cairn's metadata), from the sizes.
  int64_t data_bytes() const noexcept { return data_bytes_; }
  const PackedRegions& packed() const noexcept { return packed_; }
  const PackedRegions& records() const noexcept { return records_; }
  const std::string& temporary() const noexcept { return temporary_; }

 private:
  // Rank 0: whether the last save of this plan left its table (never for a node's part file,
  // whose plan is not kept).
  bool kept_table() const noexcept { return !part_ && prepared_.table_bytes > 0; }

  Header make_header(int64_t save_counter, int64_t created_unix) const {
    Header h;
    h.library_version = CAIRN_VERSION;
    h.world_size = comm_.size();
    if (part_) {
      h.format_minor = kPartFormatMinor;
      h.part_writers = part_->writers;
      h.part_index = part_->index;
      h.part_count = part_->count;
    }
    h.save_counter = save_counter;
    h.created_unix = created_unix;
    h.packed_bytes = packed_.total;
    h.piece_bytes = prepared_.plan.piece_bytes;
    h.pack_threshold_bytes = prepared_.options.pack_threshold_bytes;
    return h;
  }

  // The file's first rank: the table with every rank's replicated checksums and global blobs.
  void encode_table_with(const std::vector<std::string>& entries) {
    fault_point("save_table_checksums", comm_.rank());
    GlobalTable& table = kept_table() ? prepared_.table : table_;
    try {
      merge_global_entries(table, entries);
    } catch (const Error& e) {
      throw Error(e.code(), e.message(),
                  {.rank = comm_.rank(), .checkpoint = prepared_.path, .operation = "save"});
    }
    table_text_ = encode_table(table);
    if (!part_ && !kept_table()) {
      // Kept with the plan: a failed save drops both (PlanCache::clear).
      prepared_.table = std::move(table_);
      prepared_.table_bytes = static_cast<int64_t>(table_text_.size());
    }
    table_ = {};
    if (static_cast<int64_t>(table_text_.size()) != table_bytes_)
      throw Error(ErrorCode::kInternal,
                  "the table changed size once its checksums were filled in (" +
                      std::to_string(table_bytes_) + " -> " + std::to_string(table_text_.size()) +
                      " bytes)",
                  {.rank = comm_.rank(), .checkpoint = prepared_.path, .operation = "save"});
  }

  const Comm& comm_;
  const Comm& file_;
  const PartTarget* part_;
  PreparedSave& prepared_;
  GlobalTable table_;  // rank 0's
  std::string header_text_;
  std::string table_text_;  // rank 0's
  std::string record_text_;
  std::optional<Error> table_failure_;  // rank 0's, agreed by write_metadata
  int64_t data_bytes_ = 0;              // every rank of the file's packed and dataset bytes
  int64_t needed_bytes_ = 0;            // data and cairn's metadata: less than the file will take
  int64_t free_bytes_ = -1;             // what the file's first rank was told; -1: not asked
  int64_t table_bytes_ = 0;
  PackedRegions packed_;
  PackedRegions records_;
  std::string temporary_;
};

// Indices of the container's datasets in its writer; SIZE_MAX: not created.
struct ContainerDatasets {
  std::vector<std::size_t> of_tensor;  // per plan tensor
  std::size_t packed = SIZE_MAX;
  std::size_t packed_ranks = SIZE_MAX;
  std::size_t record_offsets = SIZE_MAX;
  std::size_t records = SIZE_MAX;
  std::size_t table = SIZE_MAX;
  std::size_t manifest = SIZE_MAX;
};

// Collective. Creates every dataset and the format attribute, and writes HDF5's metadata.
ContainerDatasets create_datasets(int job_size, int format_minor, ContainerWriter& writer,
                                  const SavePlan& plan, int64_t packed_total,
                                  const MetadataAssembly& metadata) {
  ContainerDatasets ds;
  ds.of_tensor.assign(plan.tensors.size(), SIZE_MAX);
  for (std::size_t i = 0; i < plan.tensors.size(); ++i)
    if (!plan.tensors[i].packed)
      ds.of_tensor[i] = writer.create_dataset(plan.tensors[i].dataset, plan.tensors[i].dtype,
                                              plan.tensors[i].shape);
  // cairn's metadata: each rank writes its own part once (the header and table: rank 0 alone).
  constexpr DatasetWrites kOwnPart = DatasetWrites::kIndependent;
  const Shape index_shape{static_cast<int64_t>(job_size) + 1};
  if (packed_total > 0) {
    ds.packed = writer.create_byte_dataset(schema::kPackedDataset, packed_total);
    ds.packed_ranks =
        writer.create_dataset(schema::kPackedRanksDataset, DType::kI64, index_shape, kOwnPart);
  }
  ds.record_offsets =
      writer.create_dataset(schema::kRecordOffsetsDataset, DType::kI64, index_shape, kOwnPart);
  ds.records =
      writer.create_byte_dataset(schema::kRecordsDataset, metadata.records().total, kOwnPart);
  ds.table = writer.create_byte_dataset(schema::kTableDataset, metadata.table_bytes(), kOwnPart);
  ds.manifest =
      writer.create_byte_dataset(schema::kManifestDataset, metadata.header_bytes(), kOwnPart);
  writer.write_root_attribute(schema::kFormatAttribute,
                              schema::format_attribute_text(kFormatMajor, format_minor));
  // HDF5's metadata is written now, while nothing else is: after that, a data write that
  // fails (a full disk) leaves close() nothing to write that could fail on some ranks only.
  writer.flush_metadata();
  return ds;
}

// Local. Writes this rank's data, computing the checksums meanwhile on a helper thread when
// `overlap_checksums`, and adds the metadata bytes it wrote to `metadata_bytes`. Returns the
// failure instead of throwing it: the caller agrees on it.
std::unique_ptr<Error> write_data_and_checksums(
    const Comm& comm, const Comm& file, ContainerWriter& writer, SavePlan& plan, IoMode mode,
    const ContainerDatasets& ds, const PackedRegions& regions, bool overlap_checksums,
    bool hash_while_packing, const std::string& path, std::vector<std::byte>& packing_buffer,
    int64_t& metadata_bytes) {
  std::unique_ptr<Error> failure;
  // Only reads the buffers and writes the pieces' checksum fields, which write_data never
  // reads; joined before anything else looks at them.
  std::future<void> checksums;
  bool checksums_after_writes = false;
  if (overlap_checksums) {
    try {
      checksums = std::async(std::launch::async, [&plan] { compute_checksums(plan); });
    } catch (const std::system_error&) {
      // No helper thread: the checksums are computed here after the writes. The writes must
      // still happen on this rank: in collective mode the other ranks wait for its calls.
      checksums_after_writes = true;
    }
  }
  try {
    // The packed pieces are hashed here, as they are packed, only when neither the helper thread
    // nor the pass before the writes does it (see commit_save).
    metadata_bytes += write_data(writer, plan, comm.rank(), file.rank(), &file == &comm,
                                 hash_while_packing, mode, ds.of_tensor, ds.packed, ds.packed_ranks,
                                 regions.offsets, regions.sizes, packing_buffer);
    if (checksums_after_writes) compute_checksums(plan);
  } catch (...) {
    // Any exception (std::bad_alloc too) goes through the agreement: thrown past it on one
    // rank, it would leave the others waiting there.
    failure = std::make_unique<Error>(
        current_exception_as_error({.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
  }
  if (checksums.valid()) {
    // Its failure goes through the agreement like a write's: a rank that threw from here would
    // leave the others waiting in it.
    try {
      checksums.get();
    } catch (...) {
      if (!failure) {
        const Error e = current_exception_as_error(
            {.rank = comm.rank(), .checkpoint = path, .operation = "save"});
        failure = std::make_unique<Error>(e.code(), "computing checksums failed: " + e.message(),
                                          e.context());
      }
    }
  }
  return failure;
}

// Collective. Every rank writes its record and its element of the record offsets; rank 0 the
// table and the header. The datasets are written independently (no rank waits in another's
// write), and the failure is agreed. Returns the bytes this rank wrote.
int64_t write_metadata(const Comm& comm, const Comm& file, const PartTarget* part,
                       ContainerWriter& writer, const ContainerDatasets& ds,
                       const MetadataAssembly& metadata, const PackedRegions& packed,
                       const std::string& path) {
  std::unique_ptr<Error> failure;
  int64_t written = 0;
  try {
    // Rank 0's failure to finish the table is agreed here, with the writes: they are independent,
    // so a rank that skips its own makes nobody wait.
    if (metadata.failure()) throw *metadata.failure();
    const auto me = static_cast<std::size_t>(file.rank());
    const std::string& record = metadata.record_text();
    writer.write_bytes(ds.records, metadata.records().offsets[me], record.data(),
                       static_cast<int64_t>(record.size()));
    written += static_cast<int64_t>(record.size());
    if (!part) {
      written += write_own_bounds(writer, ds.record_offsets, comm.rank(), comm.size(),
                                  metadata.records().offsets[me], metadata.records().sizes[me]);
    } else if (file.rank() == 0) {
      written +=
          write_part_index(writer, ds.record_offsets, *part, comm.size(), metadata.records());
      if (ds.packed_ranks != SIZE_MAX)
        written += write_part_index(writer, ds.packed_ranks, *part, comm.size(), packed);
    }
    if (file.rank() == 0)
      for (const auto& [dataset, text] :
           {std::pair{ds.table, &metadata.table_text()}, {ds.manifest, &metadata.header_text()}}) {
        writer.write_bytes(dataset, 0, text->data(), static_cast<int64_t>(text->size()));
        written += static_cast<int64_t>(text->size());
      }
  } catch (...) {
    failure = std::make_unique<Error>(
        current_exception_as_error({.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
  }
  // Agreed before the collective close: a rank whose write failed must not take a different
  // path through HDF5's collective close than the others, or the job hangs. On a failure every
  // rank throws here, and the caller discards the file.
  comm.agree(failure.get());
  return written;
}

// Collective. Every rank closes the file (`tmp`; `path` names the checkpoint in errors) and lets
// the writer go, and the outcome is agreed; then the ranks with `sync_here` fsync it, agreed too.
// The fsync waits for the agreement: closing writes HDF5's metadata from several ranks, and neither
// H5Fclose nor MPI_File_close waits for the other ranks, so a node's fsync must not start before
// its ranks have all closed.
void close_container(const Comm& comm, std::unique_ptr<ContainerWriter>& writer,
                     const std::string& path, const std::string& tmp, bool sync_here) {
  std::unique_ptr<Error> failure;
  try {
    writer->close();
  } catch (...) {
    failure = std::make_unique<Error>(
        current_exception_as_error({.rank = comm.rank(), .checkpoint = path, .operation = "save"}));
  }
  writer.reset();
  comm.agree(failure.get());
  comm.run_agreed([&] {
    if (!sync_here) return;
    try {
      fsync_path(tmp);
    } catch (const Error& e) {
      throw Error(e.code(), e.message(),
                  {.rank = comm.rank(), .checkpoint = path, .operation = "save"});
    }
  });
}

// Collective. The commit: only rank 0 touches the file system (commit mark, fsync, rename, then
// `after_commit`); the outcome reaches every rank. Returns the bytes of the commit mark this rank
// wrote.
// The error of the state file alone (its temporary name) would not say that the checkpoint itself
// is complete: name it, so the user knows what is on disk.
void run_after_commit(const std::function<void()>& after_commit, const std::string& path) {
  try {
    after_commit();
  } catch (const Error& e) {
    throw Error(e.code(),
                e.message() + " (checkpoint '" + path +
                    "' is committed, but the directory's state file could not record it)",
                e.context());
  }
}

// With a part, each node's first rank commits its file, and `after_commit` runs on the job's rank
// 0 once every part is committed.
int64_t commit_file(const Comm& comm, const Comm& file, const std::string& tmp,
                    const std::string& path, const MetadataAssembly& metadata,
                    const std::function<void()>& after_commit) {
  int64_t written = 0;
  const bool whole = &file == &comm;
  comm.run_agreed([&] {
    if (file.rank() != 0) return;
    const std::string& header = metadata.header_text();
    const std::string& table = metadata.table_text();
    CommitMark mark{checksum_bytes(header.data(), header.size()),
                    static_cast<int64_t>(header.size()),
                    std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count(),
                    static_cast<int64_t>(table.size()), checksum_bytes(table.data(), table.size())};
    const std::string mark_text = encode_commit_mark(mark);
    write_commit_mark(tmp, mark_text);
    written = static_cast<int64_t>(mark_text.size());
    fsync_path(tmp);
    fault_point("before_rename", 0);
    durable_rename(tmp, path);
    fault_point("before_state_file", 0);
    if (whole && after_commit) run_after_commit(after_commit, path);
  });
  if (!whole && after_commit)
    comm.run_agreed([&] {
      if (comm.rank() == 0) run_after_commit(after_commit, path);
    });
  return written;
}

void log_save(const Comm& comm, const PreparedSave& prepared, const SaveStats& stats,
              const PartTarget* part) {
  if (!log_enabled(prepared.options.log, comm.rank(), LogLevel::kInfo)) return;
  log_line(prepared.options.log, comm.rank(), LogLevel::kInfo,
           "saved '" + prepared.path + "' (counter " + std::to_string(prepared.save_counter) +
               ", " + std::to_string(comm.size()) + " ranks): " + describe_bytes(stats.bytes) +
               " in " + describe_seconds(stats.seconds) + ", " +
               describe_rate(stats.bytes, stats.seconds) + ", level: " +
               (part ? "node-local (" + std::to_string(part->count) + " nodes, one file each)"
                     : std::string("shared file")));
}

}  // namespace

SaveStats commit_save(const Comm& comm, PreparedSave& prepared,
                      const std::function<void()>& after_commit, const PartTarget* part) {
  // `file`: the ranks writing the same file as this one (all of them, or this node's).
  const Comm& file = part ? *part->file : comm;
  const std::string& path = prepared.path;
  SavePlan& plan = prepared.plan;
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  PhaseTrace trace("save", comm.rank(), path);
  // 1. Checksums. When some rank writes 16 MiB or more into datasets, they are all computed on a
  // helper thread while the data is written (they are only needed for the table and the records,
  // written last, whose sizes do not depend on their values). Otherwise the dataset pieces' are
  // computed first, and the packed pieces' as they are packed, while their bytes are in the cache
  // (or in the same first pass, with many packed bytes and OpenMP threads to spare).
  const int64_t dataset_bytes = prepared.dataset_bytes;
  // Decided over the job (prepare_save agreed on the largest), not the file: every node's ranks
  // must take the same branch.
  const bool overlap_checksums = prepared.job_dataset_bytes >= kOverlapChecksumBytes;
  // Local: each rank hashes its own pieces, the agreement below is the same either way.
  const bool hash_while_packing =
      !overlap_checksums && !hash_packed_in_parallel(plan.tensor_packed_bytes);
  // Agreed with the sizes below.
  std::optional<Error> failure;
  if (!overlap_checksums)
    failure = comm.run_local([&] {
      fault_point("save_checksums", comm.rank());
      compute_checksums(plan,
                        hash_while_packing ? ChecksumPieces::kDatasetsOnly : ChecksumPieces::kAll);
    });
  trace.mark("checksums");

  // Who makes the data durable before the commit: the lowest rank of each node of the shared file.
  // The node's ranks write through one page cache (one client of a parallel file system), and an
  // fsync writes back every dirty page of the file there. Rank 0's node, and a part (one node's
  // file), are covered by the commit's fsync, which follows the agreement on the close.
  const bool sync_node = !part && file.node_rank() == 0 && file.rank() != 0;

  // 2. Where every rank's packed region and record go; rank 0 builds the table.
  MetadataAssembly metadata(comm, file, part, prepared);
  metadata.size(std::move(failure));
  const PackedRegions& regions = metadata.packed();
  trace.mark("table");

  // 3. Write everything into a temporary file; nobody can mistake it for a checkpoint.
  const std::string& tmp = metadata.temporary();
  const IoMode write_mode = prepared.options.write_mode;
  std::unique_ptr<ContainerWriter> writer;
  // cairn's own metadata this rank wrote into the file (HDF5's is not counted).
  int64_t metadata_bytes_written = 0;
  try {
    ContainerDatasets datasets;
    comm.run_agreed([&] {
      // Refused by every rank of the file or by none: none of them enters the collective create.
      // The file's first rank, which asked the file system, throws; the job's agreement carries
      // its error to every rank (the other ranks of a refusing node skip the create).
      if (!metadata.has_room()) {
        if (file.rank() == 0) metadata.refuse();
        return;
      }
      writer = std::make_unique<ContainerWriter>(
          file, tmp, WriterOptions{.collective = write_mode == IoMode::kCollective});
      datasets = create_datasets(comm.size(), part ? kPartFormatMinor : kFormatMinor, *writer, plan,
                                 regions.total, metadata);
    });
    trace.mark("create datasets");
    fault_point("before_data", comm.rank());
    const std::unique_ptr<Error> data_failure = write_data_and_checksums(
        comm, file, *writer, plan, write_mode, datasets, regions, overlap_checksums,
        hash_while_packing, path, prepared.packing_buffer, metadata_bytes_written);
    trace.mark("write data", plan.packed_bytes + dataset_bytes);
    metadata.encode(data_failure.get());
    trace.mark("records and table");
    metadata_bytes_written +=
        write_metadata(comm, file, part, *writer, datasets, metadata, regions, path);
    close_container(comm, writer, path, tmp, sync_node);
    trace.mark("flush and close");
    fault_point("after_data", comm.rank());

    // 4. Commit: only rank 0 touches the file system from here; the outcome reaches every rank.
    metadata_bytes_written += commit_file(comm, file, tmp, path, metadata, after_commit);
    trace.mark("commit");
  } catch (...) {
    if (writer) writer->discard();  // every rank is here: the error was agreed
    writer.reset();
    std::error_code ignored;  // the error being reported matters more than a leftover file
    if (file.rank() == 0) std::filesystem::remove(tmp, ignored);
    throw;
  }
  SaveStats stats;
  // A shared file's sizes, gathered before it was created, already sum every rank's bytes; a
  // node's part knows only its node's.
  stats.bytes =
      part ? comm.allreduce_sum(plan.packed_bytes + dataset_bytes) : metadata.data_bytes();
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - prepared.started).count();
  stats.plan_reused = prepared.plan_reused;
  stats.metadata_bytes_written = metadata_bytes_written;
  log_save(comm, prepared, stats, part);
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
