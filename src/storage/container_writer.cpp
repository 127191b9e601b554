// SPDX-License-Identifier: Apache-2.0
#include "storage/container_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/h5_error.hpp"
#include "storage/h5_space.hpp"
#include "storage/h5_types.hpp"
#include "storage/mpio_access.hpp"
#include "storage/schema.hpp"

namespace cairn {
namespace {

// Single H5Dwrite calls are kept below 1 GiB in independent mode: MPI-IO counts are ints.
constexpr int64_t kMaxTransferBytes = int64_t{1} << 30;
// Regions written with at least this many bytes are handed to the kernel's write-back at once.
constexpr int64_t kWritebackBytes = int64_t{4} << 20;

// HDF5 1.10's MPI-IO driver reports a short or failed write as "file write failed", without
// the system's reason, so a full disk would read as a generic I/O error. The cause is added here:
// the errno the failed write left (MPI-IO's POSIX layer sets it), and the file system's state,
// which says "full" or "read-only" even when errno was overwritten.
std::string write_failure_cause(const std::string& path, int err, int64_t bytes) {
  std::string cause;
  if (err != 0) cause = std::strerror(err);
  const std::string dir = [&] {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash + 1);
  }();
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0) {
    const auto free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    std::string state;
    if (fs.f_flag & ST_RDONLY)
      state = "the file system of '" + dir + "' is read-only";
    else if (free_bytes < bytes)
      state = "the file system of '" + dir + "' has " + std::to_string(free_bytes) +
              " bytes free, this write needs " + std::to_string(bytes);
    if (err != ENOSPC && err != EDQUOT && err != EROFS && !state.empty())
      cause = (state.find("read-only") != std::string::npos ? std::strerror(EROFS)
                                                            : std::strerror(ENOSPC));
    if (!state.empty()) cause += (cause.empty() ? "" : ": ") + state;
  }
  return cause;
}

}  // namespace

ErrorContext ContainerWriter::context(const std::string& name, const std::string& op) const {
  return ErrorContext{.rank = comm_.rank(), .checkpoint = path_, .key = name, .operation = op};
}

ContainerWriter::ContainerWriter(const Comm& comm, std::string path, const WriterOptions& options)
    : comm_(comm), path_(std::move(path)), options_(options) {
  h5::silence_error_printing();
  const ErrorContext ctx = context("", "create container");
  const hid_t fapl = detail::mpio_file_access(comm_, detail::MpioAccess::kWrite, ctx);
  errno = 0;
  file_ = h5::File(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
  if (!file_.valid()) {
    const std::string cause = write_failure_cause(path_, errno, 0);
    h5::throw_error("cannot create checkpoint file" + (cause.empty() ? "" : " (" + cause + ")"),
                    ctx, ErrorCode::kIo);
  }
  collective_plist_ = h5::PropList(h5::check_id(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate", ctx));
  h5::check_status(H5Pset_dxpl_mpio(collective_plist_.get(), H5FD_MPIO_COLLECTIVE),
                   "H5Pset_dxpl_mpio", ctx);
  independent_plist_ = h5::PropList(h5::check_id(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate", ctx));
  h5::check_status(H5Pset_dxpl_mpio(independent_plist_.get(), H5FD_MPIO_INDEPENDENT),
                   "H5Pset_dxpl_mpio", ctx);
}

ContainerWriter::~ContainerWriter() {
  if (writeback_fd_ >= 0) ::close(writeback_fd_);
}

std::size_t ContainerWriter::create_dataset(const std::string& name, DType dtype,
                                            const Shape& shape, DatasetWrites writes) {
  return create_entry(name, h5::make_type(dtype), shape, writes);
}

std::size_t ContainerWriter::create_byte_dataset(const std::string& name, int64_t bytes,
                                                 DatasetWrites writes) {
  return create_entry(name, h5::make_byte_type(), {bytes}, writes);
}

std::size_t ContainerWriter::create_entry(const std::string& name, h5::Datatype type,
                                          const Shape& shape, DatasetWrites writes) {
  const ErrorContext ctx = context(name, "create dataset");
  h5::PropList lcpl(h5::check_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", ctx));
  h5::check_status(H5Pset_create_intermediate_group(lcpl.get(), 1),
                   "H5Pset_create_intermediate_group", ctx);
  h5::PropList dcpl(h5::check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", ctx));
  h5::check_status(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), "H5Pset_layout", ctx);
  h5::check_status(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time", ctx);
  h5::check_status(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "H5Pset_fill_time", ctx);
  Entry entry{.dataset = {},
              .type = std::move(type),
              .name = name,
              .collective = options_.collective && writes == DatasetWrites::kAsWriter};
  h5::Dataspace space = h5::make_space(shape);
  entry.dataset = h5::Dataset(H5Dcreate2(file_.get(), name.c_str(), entry.type.get(), space.get(),
                                         lcpl.get(), dcpl.get(), H5P_DEFAULT));
  if (!entry.dataset.valid()) h5::throw_error("cannot create dataset", ctx);
  entries_.push_back(std::move(entry));
  return entries_.size() - 1;
}

void ContainerWriter::write_root_attribute(const std::string& name, const std::string& value) {
  const ErrorContext ctx = context(name, "write attribute");
  h5::Datatype type(h5::check_id(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx));
  h5::check_status(H5Tset_size(type.get(), value.empty() ? 1 : value.size()), "H5Tset_size", ctx);
  h5::Dataspace space(h5::check_id(H5Screate(H5S_SCALAR), "H5Screate", ctx));
  h5::Attribute attr(h5::check_id(
      H5Acreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
      "H5Acreate2", ctx));
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  h5::check_status(H5Awrite(attr.get(), type.get(), padded.data()), "H5Awrite", ctx);
  h5::check_status(attr.close(), "H5Aclose", ctx);
}

void ContainerWriter::transfer(Entry& entry, hid_t mem_space, hid_t file_space, const void* data,
                               const std::string& what) {
  // Sized before the write: any HDF5 call after a failure would clear its error stack.
  const int64_t bytes =
      H5Sget_select_npoints(file_space) * static_cast<int64_t>(H5Tget_size(entry.type.get()));
  errno = 0;
  const hid_t plist = entry.collective ? collective_plist_.get() : independent_plist_.get();
  if (H5Dwrite(entry.dataset.get(), entry.type.get(), mem_space, file_space, plist, data) >= 0)
    return;
  const int err = errno;
  const std::string cause = write_failure_cause(path_, err, bytes);
  h5::throw_error("cannot write " + what + (cause.empty() ? "" : " (" + cause + ")"),
                  context(entry.name, "write"), ErrorCode::kIo);
}

void ContainerWriter::write(std::size_t index, const Box& region, const void* buffer,
                            const Box& buffer_box) {
  Entry& entry = entries_.at(index);
  h5::Dataspace file_space(H5Dget_space(entry.dataset.get()));
  Shape file_extent(region.rank());
  if (region.rank() > 0) {
    std::vector<hsize_t> dims(region.rank());
    H5Sget_simple_extent_dims(file_space.get(), dims.data(), nullptr);
    file_extent.assign(dims.begin(), dims.end());
  }
  const int64_t esize = static_cast<int64_t>(H5Tget_size(entry.type.get()));
  std::vector<Box> parts;
  if (!entry.collective && region.volume() * esize > kMaxTransferBytes)
    parts = split_box(region, esize, kMaxTransferBytes);
  else
    parts.push_back(region);
  for (const Box& part : parts) {
    h5::Dataspace file_sel = h5::select_region(file_extent, Shape(region.rank(), 0), part);
    h5::Dataspace mem_sel = h5::select_region(buffer_box.count, buffer_box.offset, part);
    transfer(entry, mem_sel.get(), file_sel.get(), buffer, "box " + part.to_string());
  }
  start_writeback(entry, file_extent, region, esize);
}

// Without this, dirty pages reach the disk only at the final sync (the kernel starts write-back on
// its own only past gigabytes of dirty memory), so copying into the page cache and writing to the
// disk happen one after the other. sync_file_range(WRITE) starts the disk writes of a region now,
// without waiting, so they overlap with copying the next one. Only a hint: durability still comes
// from the fsync after close and the commit's fsync.
void ContainerWriter::start_writeback(Entry& entry, const Shape& extent, const Box& region,
                                      int64_t esize) {
  if (writeback_fd_ == -2 || region.volume() * esize < kWritebackBytes) return;
  const haddr_t base = H5Dget_offset(entry.dataset.get());
  if (base == HADDR_UNDEF) {
    h5::take_error_stack();
    return;
  }
  const auto [first, span] = h5::region_byte_span(extent, region, esize);
  if (span > 2 * region.volume() * esize) return;  // a scattered region: not worth it
  if (writeback_fd_ == -1) {
    writeback_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (writeback_fd_ < 0) {
      writeback_fd_ = -2;
      return;
    }
  }
  ::sync_file_range(writeback_fd_, static_cast<off_t>(base) + first, span, SYNC_FILE_RANGE_WRITE);
}

void ContainerWriter::write_nothing(std::size_t index) {
  Entry& entry = entries_.at(index);
  if (!entry.collective) return;
  h5::Dataspace file_space(H5Dget_space(entry.dataset.get()));
  H5Sselect_none(file_space.get());
  h5::Dataspace mem_space(H5Scopy(file_space.get()));
  transfer(entry, mem_space.get(), file_space.get(), nullptr, "empty selection");
}

void ContainerWriter::write_bytes(std::size_t index, int64_t offset, const void* data,
                                  int64_t bytes) {
  const Box region{{offset}, {bytes}};
  write(index, region, data, region);
}

int64_t ContainerWriter::file_offset(std::size_t index) const {
  const haddr_t address = H5Dget_offset(entries_.at(index).dataset.get());
  if (address != HADDR_UNDEF) return static_cast<int64_t>(address);
  h5::take_error_stack();
  return 0;
}

void ContainerWriter::flush_metadata() {
  h5::check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "H5Fflush (metadata)",
                   context("", "create container"));
}

void ContainerWriter::discard() noexcept {
  if (writeback_fd_ >= 0) ::close(writeback_fd_);
  writeback_fd_ = -1;
  if (!file_.valid()) return;
  // Every rank's writes are over (the failure was agreed), so rank 0 may drop the data now.
  if (comm_.rank() == 0 && ::truncate(path_.c_str(), 0) != 0) {
    // Nothing to do: the close below may then fail too, which is still better than a hang.
  }
  entries_.clear();
  (void)file_.close();
  h5::take_error_stack();
}

void ContainerWriter::close() {
  const ErrorContext ctx = context("", "close container");
  if (writeback_fd_ >= 0) ::close(writeback_fd_);
  writeback_fd_ = -1;
  if (!file_.valid()) return;
  for (Entry& e : entries_) h5::check_status(e.dataset.close(), "H5Dclose " + e.name, ctx);
  entries_.clear();
  if (file_.close() < 0) h5::throw_error("cannot close checkpoint file", ctx, ErrorCode::kIo);
}

void write_commit_mark(const std::string& path, const std::string& mark) {
  h5::silence_error_printing();
  const ErrorContext ctx{.rank = 0, .checkpoint = path, .operation = "write commit mark"};
  h5::PropList fapl(h5::check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", ctx));
  h5::check_status(H5Pset_file_locking(fapl.get(), false, true), "H5Pset_file_locking", ctx);
  errno = 0;
  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get()));
  if (!file.valid()) {
    // Typically the directory was deleted or replaced during the save: say so.
    const int err = errno;
    const std::string dir = path.substr(0, path.find_last_of('/') + 1);
    struct stat st {};
    std::string cause = err != 0 ? std::strerror(err) : "";
    if (!dir.empty() && ::stat(dir.c_str(), &st) != 0)
      cause +=
          std::string(cause.empty() ? "" : ": ") + "the directory '" + dir + "' no longer exists";
    h5::throw_error("cannot reopen the written file" + (cause.empty() ? "" : " (" + cause + ")"),
                    ctx, ErrorCode::kIo);
  }
  h5::Datatype type(h5::check_id(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx));
  h5::check_status(H5Tset_size(type.get(), mark.size()), "H5Tset_size", ctx);
  h5::Dataspace space(h5::check_id(H5Screate(H5S_SCALAR), "H5Screate", ctx));
  h5::Attribute attr(h5::check_id(H5Acreate2(file.get(), detail::schema::kCommitAttribute,
                                             type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                                  "H5Acreate2", ctx));
  h5::check_status(H5Awrite(attr.get(), type.get(), mark.data()), "H5Awrite", ctx);
  h5::check_status(attr.close(), "H5Aclose", ctx);
  h5::check_status(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "H5Fflush", ctx);
  if (file.close() < 0) h5::throw_error("cannot close after the commit mark", ctx, ErrorCode::kIo);
}

}  // namespace cairn
