// SPDX-License-Identifier: Apache-2.0
#include "storage/container_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "storage/checksum.hpp"
#include "storage/h5_error.hpp"
#include "storage/h5_space.hpp"
#include "storage/h5_types.hpp"
#include "storage/mpio_access.hpp"
#include "storage/schema.hpp"
#include "storage/table.hpp"

namespace cairn::detail {
namespace {

using schema::kCommitAttribute;
using schema::kManifestDataset;
using schema::kPackedDataset;
using schema::kPackedRanksDataset;
using schema::kRecordOffsetsDataset;
using schema::kRecordsDataset;
using schema::kTableDataset;
// Read-ahead chunks: a quarter of the budget, so that the helper reads while the consumer works,
// and large enough that the reads stay large.
constexpr int64_t kMinPrefetchChunkBytes = int64_t{1} << 20;
constexpr int64_t kMaxPrefetchChunkBytes = int64_t{16} << 20;
constexpr int64_t kMaxManifestBytes = int64_t{1} << 32;
constexpr int64_t kMaxTableBytes = int64_t{1} << 40;
constexpr int64_t kMaxTransferBytes = int64_t{1} << 30;
// A record read before the table is verified is at most this large (2.7 million pieces): a
// damaged or hostile offsets index must not make every rank allocate what it claims.
constexpr int64_t kMaxEarlyRecordBytes = int64_t{64} << 20;

}  // namespace

void ContainerReader::check_openable() const {
  const ErrorContext ctx{.rank = rank(), .checkpoint = path_, .operation = "open checkpoint"};
  // Opened here, not only looked up: a rank whose open would fail inside HDF5's collective open (a
  // node whose mount or permissions differ, a path that names a socket) would leave the others
  // there. Without blocking: a FIFO would wait here for a writer.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      throw Error(ErrorCode::kNotFound, "checkpoint file does not exist", ctx);
    throw Error(ErrorCode::kIo, std::string("cannot open for reading: ") + std::strerror(err), ctx);
  }
  struct stat st {};
  const bool known = ::fstat(fd, &st) == 0;
  ::close(fd);
  // MPI-IO would try to read a directory (and print an error per read) before HDF5 gives up, and
  // its own open of a FIFO or a device would block or fail on this rank alone.
  if (known && S_ISDIR(st.st_mode))
    throw Error(ErrorCode::kInvalidArgument, "is a directory, not a checkpoint file", ctx);
  if (!known || !S_ISREG(st.st_mode))
    throw Error(ErrorCode::kInvalidArgument,
                "is not a regular file (a FIFO or a device), not a checkpoint file", ctx);
}

void ContainerReader::open_file() {
  const ErrorContext ctx{.rank = rank(), .checkpoint = path_, .operation = "open checkpoint"};
  h5::PropList local;  // a reader without a communicator (the tools, a deferred restore)
  hid_t fapl = H5I_INVALID_HID;
  if (comm_) {
    fapl = mpio_file_access(*comm_, MpioAccess::kRead, ctx);
  } else {
    local = h5::PropList(h5::check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", ctx));
    h5::check_status(H5Pset_file_locking(local.get(), false, true), "H5Pset_file_locking", ctx);
    fapl = local.get();
  }
  file_ = h5::File(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, fapl));
  if (!file_.valid())
    h5::throw_error("cannot open as HDF5 (not an HDF5 file, truncated, or unreadable)", ctx,
                    ErrorCode::kCorrupt);
}

ContainerReader::ContainerReader(std::string path, const Known& known)
    : comm_(nullptr), path_(std::move(path)) {
  h5::silence_error_printing();
  check_openable();
  open_file();
  const ErrorContext ctx{.rank = rank(), .checkpoint = path_, .operation = "reopen checkpoint"};
  if (H5Aexists(file_.get(), kCommitAttribute) <= 0) {
    h5::take_error_stack();
    throw Error(ErrorCode::kNotFound,
                "the checkpoint file was replaced since it was restored (it has no commit mark)",
                ctx);
  }
  mark_ = decode_commit_mark(read_root_attribute(kCommitAttribute), path_);
  // Format 2.x: the header alone can be the same for two saves (same counter, same second); the
  // table's checksum tells them apart.
  if (mark_.manifest_checksum != known.mark.manifest_checksum ||
      mark_.manifest_bytes != known.mark.manifest_bytes ||
      mark_.table_bytes != known.mark.table_bytes ||
      mark_.table_checksum != known.mark.table_checksum)
    throw Error(ErrorCode::kNotFound,
                "the checkpoint file was replaced since it was restored; deferred restoration "
                "needs the file the restore read",
                ctx);
  packed_bytes_ = known.packed_bytes;
  check_packed_dataset();
}

ContainerReader::ContainerReader(const Comm* comm, std::string path, int64_t prefetch_bytes,
                                 Records records, const Comm* job)
    : comm_(comm), job_(job), path_(std::move(path)) {
  h5::silence_error_printing();
  if (!comm_) {
    check_openable();
    open_file();
    read_verified_metadata();
    decode_metadata(records);
    return;
  }
  // Agreed before HDF5's open, which is collective: a rank that cannot see the file (a stale
  // directory cache on a network file system) must not leave the others waiting inside it.
  comm_->run_agreed([&] { check_openable(); });
  comm_->run_agreed([&] { open_file(); });
  // The other ranks read their records while rank 0 reads the metadata they all wait for; rank 0
  // reads its own once it has sent that metadata, while the others start their read-ahead.
  const bool early_record = records == Records::kOnDemand;
  if (early_record && comm_->rank() != 0) read_own_record_early();
  std::string mark_text;
  std::optional<Error> failure;
  if (comm_->rank() == 0)
    failure = comm_->run_local([&] {
      read_verified_metadata();
      mark_text = encode_commit_mark(mark_);
    });
  // The header and the table are the file's bytes relayed unchanged (and checked against the
  // mark's checksums by rank 0), not messages: wrapping megabytes would only add copies.
  comm_->broadcast_agreed({&mark_text, &manifest_text_, &table_text_}, 0,
                          failure ? &*failure : nullptr);
  if (comm_->rank() != 0)
    metadata_bytes_read_ +=
        static_cast<int64_t>(mark_text.size() + manifest_text_.size() + table_text_.size());
  if (early_record && comm_->rank() == 0) read_own_record_early();
  if (prefetch_bytes > 0) start_prefetch(prefetch_bytes);
  // Every rank decodes at the same time rather than rank 0 first and the others after the
  // broadcast: decoding is deterministic, so all reach the same verdict. Records read on demand
  // are read by the ranks that need them, later.
  comm_->run_agreed([&] {
    if (comm_->rank() != 0) mark_ = decode_commit_mark(mark_text, path_);
    decode_metadata(records);
  });
}

void ContainerReader::decode_metadata(Records records) {
  const Header header = decode_header(manifest_text_, path_);
  if (header.format_major == kLegacyMajor) {
    manifest_ = decode_manifest(manifest_text_, path_);
    packed_bytes_ = manifest_.packed_bytes;
    check_packed_dataset();
    return;
  }
  std::vector<std::string> paths;
  GlobalTable table = decode_table(table_text_, header, path_, &paths);
  table_text_ = {};
  manifest_ = manifest_from_table(header, table, std::move(paths));
  packed_bytes_ = manifest_.packed_bytes;
  check_packed_dataset();
  records_ = std::make_shared<SavedRecords>(header, std::move(table));
  if (records == Records::kAll) records_->load_all(*this, manifest_);
}

ContainerReader::~ContainerReader() = default;

void ContainerReader::start_prefetch(int64_t max_bytes) noexcept {
  try {
    // Nothing here is collective and nothing is trusted: the region is only read, and every byte
    // consumed is checked against the manifest's checksums. A 1.0 file has no index.
    if (H5Lexists(file_.get(), schema::kGroup, H5P_DEFAULT) <= 0 ||
        H5Lexists(file_.get(), kPackedRanksDataset, H5P_DEFAULT) <= 0) {
      h5::take_error_stack();
      return;
    }
    h5::Dataset index(H5Dopen2(file_.get(), kPackedRanksDataset, H5P_DEFAULT));
    if (!index.valid()) return;
    h5::Dataspace space(H5Dget_space(index.get()));
    const int ranks = job_ ? job_->size() : comm_->size();
    if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1 ||
        H5Sget_simple_extent_npoints(space.get()) != ranks + 1)
      return;  // saved by another number of ranks: the regions do not map to this job's ranks
    int64_t bounds[2] = {0, 0};
    h5::Dataspace file_sel = h5::select_region({ranks + 1}, {0}, Box{{rank()}, {2}});
    h5::Dataspace mem_sel = h5::select_region({2}, {0}, Box{{0}, {2}});
    if (H5Dread(index.get(), H5T_NATIVE_INT64, mem_sel.get(), file_sel.get(), H5P_DEFAULT, bounds) <
        0) {
      h5::take_error_stack();
      return;
    }
    metadata_bytes_read_ += static_cast<int64_t>(sizeof bounds);
    const hid_t packed = dataset(kPackedDataset, kPackedDataset);  // kept for the reads
    h5::Dataspace packed_space(H5Dget_space(packed));
    const haddr_t address = H5Dget_offset(packed);
    const int64_t size =
        packed_space.valid() ? H5Sget_simple_extent_npoints(packed_space.get()) : -1;
    if (address == HADDR_UNDEF || size < 0 || bounds[0] < 0 || bounds[0] > bounds[1] ||
        bounds[1] > size) {
      h5::take_error_stack();
      return;
    }
    const int64_t chunk = std::clamp(max_bytes / 4, kMinPrefetchChunkBytes, kMaxPrefetchChunkBytes);
    const int chunks = static_cast<int>(std::clamp<int64_t>(max_bytes / chunk, 1, 64));
    prefetch_ = std::make_unique<PackedPrefetch>(path_, static_cast<int64_t>(address), bounds[0],
                                                 bounds[1], chunk, chunks);
  } catch (...) {
    h5::take_error_stack();
    prefetch_.reset();
  }
}

namespace {

// A contiguous dataset stored smaller than its extent was never fully written. Reading it would
// return fill values, and trusting its extent would let a small hostile file make the reader
// allocate whatever it declares (cairn writes contiguous datasets, allocated at creation).
void check_fully_stored(hid_t ds, int64_t bytes, const ErrorContext& ctx) {
  h5::PropList dcpl(h5::check_id(H5Dget_create_plist(ds), "H5Dget_create_plist", ctx));
  const auto stored = static_cast<int64_t>(H5Dget_storage_size(ds));
  if (H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS && stored < bytes)
    throw Error(ErrorCode::kCorrupt,
                "dataset stores " + std::to_string(stored) + " of the " + std::to_string(bytes) +
                    " bytes it declares",
                ctx);
}

// Reads `bytes` bytes at `offset` of a one-dimensional u8 dataset, in transfers MPI-IO can take.
void read_bytes(hid_t ds, int64_t offset, char* out, int64_t bytes, const ErrorContext& ctx) {
  h5::Dataspace space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  const int64_t extent = H5Sget_simple_extent_npoints(space.get());
  h5::Datatype type = h5::make_byte_type();
  for (int64_t done = 0; done < bytes;) {
    const int64_t n = std::min(bytes - done, kMaxTransferBytes);
    const Box region{{offset + done}, {n}};
    h5::Dataspace file_sel = h5::select_region({extent}, {0}, region);
    h5::Dataspace mem_sel = h5::select_region({n}, {offset + done}, region);
    if (H5Dread(ds, type.get(), mem_sel.get(), file_sel.get(), H5P_DEFAULT, out + done) < 0)
      h5::throw_error("cannot read metadata bytes", ctx, ErrorCode::kIo);
    done += n;
  }
}

}  // namespace

void ContainerReader::check_packed_dataset() {
  // Before any value is read, so that a bad packed dataset fails the restore before it changes
  // anything and before a read window is sized from the manifest's claims.
  if (packed_bytes_ == 0) return;
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = kPackedDataset, .operation = "open packed data"};
  hid_t ds = dataset(kPackedDataset, kPackedDataset);
  h5::Dataspace space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  if (H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_npoints(space.get()) != packed_bytes_)
    throw Error(ErrorCode::kCorrupt,
                "packed dataset size differs from the manifest (" + std::to_string(packed_bytes_) +
                    " bytes)",
                ctx);
  check_fully_stored(ds, packed_bytes_, ctx);
}

void ContainerReader::read_verified_metadata() {
  const ErrorContext ctx{.rank = rank(), .checkpoint = path_, .operation = "read manifest"};
  if (H5Aexists(file_.get(), kCommitAttribute) <= 0) {
    h5::take_error_stack();
    throw Error(
        ErrorCode::kCorrupt,
        "not a committed cairn checkpoint: the commit mark is missing (an interrupted save, "
        "or a file cairn did not write)",
        ctx);
  }
  const std::string mark_text = read_root_attribute(kCommitAttribute);
  mark_ = decode_commit_mark(mark_text, path_);
  manifest_text_ = read_byte_dataset(kManifestDataset, mark_.manifest_bytes, kMaxManifestBytes);
  metadata_bytes_read_ += static_cast<int64_t>(mark_text.size() + manifest_text_.size());
  const uint64_t actual = checksum_bytes(manifest_text_.data(), manifest_text_.size());
  if (actual != mark_.manifest_checksum)
    throw Error(ErrorCode::kCorrupt,
                "manifest checksum mismatch: expected " + checksum_to_hex(mark_.manifest_checksum) +
                    ", found " + checksum_to_hex(actual),
                ctx);
  // The version decides whether there is a table; a newer major is refused here, before the
  // table's size is trusted.
  if (decode_header(manifest_text_, path_).format_major == kLegacyMajor) return;
  if (mark_.table_bytes < 0)
    throw Error(ErrorCode::kCorrupt, "the commit mark of a format 2 file has no table size", ctx);
  table_text_ = read_byte_dataset(kTableDataset, mark_.table_bytes, kMaxTableBytes);
  metadata_bytes_read_ += static_cast<int64_t>(table_text_.size());
  const uint64_t table_actual = checksum_bytes(table_text_.data(), table_text_.size());
  if (table_actual != mark_.table_checksum)
    throw Error(
        ErrorCode::kCorrupt,
        "table checksum mismatch: expected " + checksum_to_hex(mark_.table_checksum) + ", found " +
            checksum_to_hex(table_actual),
        {.rank = rank(), .checkpoint = path_, .key = kTableDataset, .operation = "read table"});
}

std::vector<int64_t> ContainerReader::record_offsets(int first, int count, int world_size) {
  const ErrorContext ctx{.rank = rank(),
                         .checkpoint = path_,
                         .key = kRecordOffsetsDataset,
                         .operation = "read record offsets"};
  hid_t ds = dataset(kRecordOffsetsDataset, kRecordOffsetsDataset);
  h5::Dataspace space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  if (H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_npoints(space.get()) != int64_t{world_size} + 1)
    throw Error(ErrorCode::kCorrupt,
                "record offsets do not have world_size + 1 = " + std::to_string(world_size + 1) +
                    " elements",
                ctx);
  check_fully_stored(ds, (int64_t{world_size} + 1) * 8, ctx);
  std::vector<int64_t> out(static_cast<std::size_t>(count));
  const Box region{{first}, {count}};
  h5::Dataspace file_sel = h5::select_region({int64_t{world_size} + 1}, {0}, region);
  h5::Dataspace mem_sel = h5::select_region({count}, {first}, region);
  h5::check_status(
      H5Dread(ds, H5T_NATIVE_INT64, mem_sel.get(), file_sel.get(), H5P_DEFAULT, out.data()),
      "H5Dread record offsets", ctx);
  metadata_bytes_read_ += count * 8;
  return out;
}

namespace {

// The records dataset's size, checked to be stored (so that offsets into it bound what a reader
// allocates by what the file really holds).
int64_t records_extent(hid_t ds, const ErrorContext& ctx) {
  h5::Dataspace space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    throw Error(ErrorCode::kCorrupt, "the records dataset is not one-dimensional", ctx);
  const int64_t extent = H5Sget_simple_extent_npoints(space.get());
  check_fully_stored(ds, extent, ctx);
  return extent;
}

void check_record_bounds(int64_t begin, int64_t end, int64_t extent, int writer,
                         const ErrorContext& ctx) {
  if (begin < 0 || end < begin || end > extent)
    throw Error(ErrorCode::kCorrupt,
                "record of rank " + std::to_string(writer) + " lies outside the records (bytes " +
                    std::to_string(begin) + " to " + std::to_string(end) + " of " +
                    std::to_string(extent) + ")",
                ctx);
}

}  // namespace

void ContainerReader::read_own_record_early() noexcept {
  // Nothing in the file is verified yet (rank 0 checks the mark and the table meanwhile): the
  // record's size is bounded before anything is allocated for it, and whatever this reads is
  // counted only if it is kept.
  const int64_t counted = metadata_bytes_read_;
  try {
    if (H5Lexists(file_.get(), schema::kGroup, H5P_DEFAULT) <= 0 ||
        H5Lexists(file_.get(), kRecordOffsetsDataset, H5P_DEFAULT) <= 0 ||
        H5Lexists(file_.get(), kRecordsDataset, H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    const int ranks = job_ ? job_->size() : comm_->size();
    h5::Dataspace space(H5Dget_space(dataset(kRecordOffsetsDataset, kRecordOffsetsDataset)));
    if (!space.valid() || H5Sget_simple_extent_npoints(space.get()) != int64_t{ranks} + 1) {
      H5Eclear2(H5E_DEFAULT);
      return;  // saved by another number of ranks
    }
    const std::vector<int64_t> bounds = record_offsets(rank(), 2, ranks);
    if (bounds[1] - bounds[0] > kMaxEarlyRecordBytes) {
      metadata_bytes_read_ = counted;
      return;  // read when needed, once the table says how large it may be
    }
    early_record_ = {rank(), ranks, read_record_at(rank(), bounds)};
  } catch (...) {
    metadata_bytes_read_ = counted;
    early_record_ = {};
    H5Eclear2(H5E_DEFAULT);
  }
}

std::string ContainerReader::read_record(int writer, int world_size) {
  if (early_record_.writer == writer && early_record_.world_size == world_size) {
    early_record_.writer = -1;
    return std::move(early_record_.bytes);
  }
  return read_record_at(writer, record_offsets(writer, 2, world_size));
}

std::string ContainerReader::read_record_at(int writer, const std::vector<int64_t>& bounds) {
  const ErrorContext ctx{.rank = rank(),
                         .checkpoint = path_,
                         .key = kRecordsDataset,
                         .operation = "read record of rank " + std::to_string(writer)};
  hid_t ds = dataset(kRecordsDataset, kRecordsDataset);
  check_record_bounds(bounds[0], bounds[1], records_extent(ds, ctx), writer, ctx);
  std::string bytes(static_cast<std::size_t>(bounds[1] - bounds[0]), '\0');
  if (!bytes.empty()) read_bytes(ds, bounds[0], bytes.data(), bounds[1] - bounds[0], ctx);
  metadata_bytes_read_ += static_cast<int64_t>(bytes.size());
  return bytes;
}

std::vector<std::string> ContainerReader::read_all_records(int world_size) {
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = kRecordsDataset, .operation = "read records"};
  const std::vector<int64_t> bounds = record_offsets(0, world_size + 1, world_size);
  hid_t ds = dataset(kRecordsDataset, kRecordsDataset);
  const int64_t extent = records_extent(ds, ctx);
  for (int w = 0; w < world_size; ++w)
    check_record_bounds(bounds[static_cast<std::size_t>(w)],
                        bounds[static_cast<std::size_t>(w) + 1], extent, w, ctx);
  const int64_t first = bounds.front(), last = bounds.back();
  std::string all(static_cast<std::size_t>(last - first), '\0');
  if (!all.empty()) read_bytes(ds, first, all.data(), last - first, ctx);
  metadata_bytes_read_ += static_cast<int64_t>(all.size());
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(world_size));
  for (int w = 0; w < world_size; ++w)
    out.push_back(all.substr(static_cast<std::size_t>(bounds[static_cast<std::size_t>(w)] - first),
                             static_cast<std::size_t>(bounds[static_cast<std::size_t>(w) + 1] -
                                                      bounds[static_cast<std::size_t>(w)])));
  return out;
}

std::string ContainerReader::read_root_attribute(const std::string& name) {
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = name, .operation = "read attribute"};
  h5::Attribute attr(h5::check_id(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT), "H5Aopen", ctx));
  h5::Datatype type(h5::check_id(H5Aget_type(attr.get()), "H5Aget_type", ctx));
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    throw Error(ErrorCode::kCorrupt, "attribute is not a fixed-length string", ctx);
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0 || size > (1u << 20))
    throw Error(ErrorCode::kCorrupt, "attribute has an absurd size", ctx);
  std::string value(size, '\0');
  h5::check_status(H5Aread(attr.get(), type.get(), value.data()), "H5Aread", ctx);
  if (auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  return value;
}

std::string ContainerReader::read_byte_dataset(const char* name, int64_t expected, int64_t limit) {
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = name, .operation = "read metadata"};
  if (expected < 0 || expected > limit)
    throw Error(ErrorCode::kCorrupt,
                std::string("commit mark gives an absurd size for ") + name + ": " +
                    std::to_string(expected) + " bytes",
                ctx);
  hid_t ds = dataset(name, name);
  h5::Dataspace space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  if (H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_npoints(space.get()) != expected)
    throw Error(ErrorCode::kCorrupt,
                std::string(name) + " size differs from the commit mark (" +
                    std::to_string(expected) + " bytes)",
                ctx);
  check_fully_stored(ds, expected, ctx);
  std::string text(static_cast<std::size_t>(expected), '\0');
  if (expected > 0) read_bytes(ds, 0, text.data(), expected, ctx);
  return text;
}

hid_t ContainerReader::dataset(const std::string& name, const std::string& key) {
  auto it = datasets_.find(name);
  if (it != datasets_.end()) return it->second.get();
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = key, .operation = "open dataset " + name};
  h5::Dataset ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  if (!ds.valid()) h5::throw_error("dataset is missing", ctx, ErrorCode::kCorrupt);
  hid_t id = ds.get();
  datasets_.emplace(name, std::move(ds));
  return id;
}

void ContainerReader::read_region(const TensorRecord& t, const Box& region, void* buffer,
                                  const Box& buffer_box) {
  const ErrorContext ctx{.rank = rank(),
                         .checkpoint = path_,
                         .key = t.key,
                         .box = region.to_string(),
                         .operation = "read"};
  hid_t ds = dataset(t.dataset, t.key);
  h5::Dataspace file_space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  const int ndims = H5Sget_simple_extent_ndims(file_space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(ndims, 0)));
  if (ndims > 0) H5Sget_simple_extent_dims(file_space.get(), dims.data(), nullptr);
  if (ndims < 0 || Shape(dims.begin(), dims.end()) != t.shape)
    throw Error(ErrorCode::kCorrupt,
                "dataset shape differs from the manifest's " + shape_to_string(t.shape), ctx);
  h5::Datatype type = h5::make_type(t.dtype);
  h5::Datatype stored(h5::check_id(H5Dget_type(ds), "H5Dget_type", ctx));
  if (H5Tget_size(stored.get()) != H5Tget_size(type.get()))
    throw Error(ErrorCode::kCorrupt, "dataset element size differs from the manifest's dtype", ctx);
  const auto esize = static_cast<int64_t>(dtype_size(t.dtype));
  // Single reads stay below 1 GiB: MPI-IO counts are ints.
  const std::vector<Box> parts = region.volume() * esize > kMaxTransferBytes
                                     ? split_box(region, esize, kMaxTransferBytes)
                                     : std::vector<Box>{region};
  for (const Box& part : parts) {
    h5::Dataspace file_sel = h5::select_region(t.shape, Shape(t.shape.size(), 0), part);
    h5::Dataspace mem_sel = h5::select_region(buffer_box.count, buffer_box.offset, part);
    if (H5Dread(ds, type.get(), mem_sel.get(), file_sel.get(), H5P_DEFAULT, buffer) < 0)
      h5::throw_error("cannot read", ctx, ErrorCode::kIo);
  }
}

void ContainerReader::read_packed(int64_t offset, int64_t bytes, void* out) {
  const ErrorContext ctx{
      .rank = rank(), .checkpoint = path_, .key = kPackedDataset, .operation = "read packed"};
  if (bytes == 0) return;
  hid_t ds = dataset(kPackedDataset, kPackedDataset);
  h5::Dataspace file_space(h5::check_id(H5Dget_space(ds), "H5Dget_space", ctx));
  if (H5Sget_simple_extent_npoints(file_space.get()) != packed_bytes_)
    throw Error(ErrorCode::kCorrupt, "packed dataset size differs from the manifest", ctx);
  const Box region{{offset}, {bytes}};
  h5::Dataspace file_sel = h5::select_region({packed_bytes_}, {0}, region);
  h5::Dataspace mem_sel = h5::select_region({bytes}, {offset}, region);
  h5::Datatype type = h5::make_byte_type();
  if (H5Dread(ds, type.get(), mem_sel.get(), file_sel.get(), H5P_DEFAULT, out) < 0)
    h5::throw_error("cannot read packed bytes", ctx, ErrorCode::kIo);
}

void ContainerReader::close() {
  prefetch_.reset();
  datasets_.clear();
  if (file_.valid() && file_.close() < 0)
    h5::throw_error("cannot close checkpoint",
                    {.rank = rank(), .checkpoint = path_, .operation = "close"});
}

}  // namespace cairn::detail
