// SPDX-License-Identifier: Apache-2.0
#pragma once
// Collective creation and parallel writing of one checkpoint container through MPI-IO.
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/comm/comm.hpp"
#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"
#include "storage/h5_handle.hpp"

namespace cairn {

/// How a ContainerWriter writes: storage's own options (the checkpoint layer fills them from the
/// session's).
struct WriterOptions {
  /// Collective MPI-IO transfers: every rank makes the same number of write calls per dataset.
  /// Otherwise independent ones, each kept below 1 GiB (MPI-IO counts are ints).
  bool collective = false;
};

/// How one dataset's writes go: as WriterOptions say, or always independently. The small metadata
/// datasets that each rank (or rank 0 alone) writes once are independent: a collective transfer
/// would add a round of communication among all ranks for a few bytes, which at 128 ranks costs
/// more than the bytes.
enum class DatasetWrites { kAsWriter, kIndependent };

class ContainerWriter {
 public:
  /// Collective over `comm`. Creates (truncates) `path` for parallel writing.
  ContainerWriter(const Comm& comm, std::string path, const WriterOptions& options);
  ~ContainerWriter();
  ContainerWriter(const ContainerWriter&) = delete;
  ContainerWriter& operator=(const ContainerWriter&) = delete;

  /// Collective over the communicator, same arguments on every rank. Creates a contiguous,
  /// early-allocated dataset (with intermediate groups) and returns its index.
  std::size_t create_dataset(const std::string& name, DType dtype, const Shape& shape,
                             DatasetWrites writes = DatasetWrites::kAsWriter);
  /// Collective, as create_dataset: a 1-D byte dataset of `bytes` bytes.
  std::size_t create_byte_dataset(const std::string& name, int64_t bytes,
                                  DatasetWrites writes = DatasetWrites::kAsWriter);
  /// Collective. A string attribute on the root group.
  void write_root_attribute(const std::string& name, const std::string& value);

  /// Writes `region` of a buffer laid out as `buffer_box` into dataset `index`. Independent mode
  /// (or a DatasetWrites::kIndependent dataset): any rank, any number of calls. Collective mode:
  /// every rank makes the same number of calls per dataset (write_nothing() pads; it does nothing
  /// for an independent dataset).
  void write(std::size_t index, const Box& region, const void* buffer, const Box& buffer_box);
  void write_nothing(std::size_t index);
  /// Writes `bytes` bytes at `offset` of byte dataset `index` (one call per rank in collective
  /// mode).
  void write_bytes(std::size_t index, int64_t offset, const void* data, int64_t bytes);

  /// Where dataset `index` starts in the file, in bytes (the same on every rank: its space is
  /// allocated at creation); 0 if HDF5 cannot tell.
  int64_t file_offset(std::size_t index) const;

  /// Collective. Writes HDF5's metadata (superblock, object headers, attributes) now, before the
  /// data: a failing data write then leaves nothing for close() to write.
  void flush_metadata();
  /// Collective. Closes everything, without syncing: HDF5's H5Fflush before the close is an
  /// MPI_File_sync on every rank, an fsync per rank. The caller makes the file durable once every
  /// rank has closed it (save.cpp: one fsync per node).
  void close();
  /// Collective, for a save that failed on some rank (agreed): rank 0 truncates the file to free
  /// the space it took, then everything is closed, errors ignored. A failed H5Fclose (a full disk
  /// refusing HDF5's last metadata write) would leave HDF5 1.10 with a dangling file ID that
  /// crashes the process in MPI_Finalize; with the space freed, the close succeeds.
  void discard() noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  struct Entry {
    h5::Dataset dataset;
    h5::Datatype type;
    std::string name;
    bool collective = false;
  };
  ErrorContext context(const std::string& name, const std::string& op) const;
  std::size_t create_entry(const std::string& name, h5::Datatype type, const Shape& shape,
                           DatasetWrites writes);
  void start_writeback(Entry& entry, const Shape& extent, const Box& region, int64_t esize);
  void transfer(Entry& entry, hid_t mem_space, hid_t file_space, const void* data,
                const std::string& what);

  const Comm& comm_;
  std::string path_;
  WriterOptions options_;
  h5::PropList collective_plist_;
  h5::PropList independent_plist_;
  h5::File file_;
  std::vector<Entry> entries_;
  int writeback_fd_ = -1;  // a plain descriptor of the file, to start write-back early; -2: none
};

/// Local. Writes the commit mark (a root attribute) into the closed file at `path`, after which
/// readers accept it. Only rank 0 calls this, once every rank's data is durable.
void write_commit_mark(const std::string& path, const std::string& mark);

}  // namespace cairn
