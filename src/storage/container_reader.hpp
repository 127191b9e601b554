// SPDX-License-Identifier: Apache-2.0
#pragma once
// Opening a committed checkpoint container and reading regions of it. Reads are independent:
// each rank reads only what it needs.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "cairn/comm/comm.hpp"
#include "storage/h5_handle.hpp"
#include "storage/manifest.hpp"
#include "storage/packed_prefetch.hpp"
#include "storage/saved_records.hpp"

namespace cairn::detail {

class ContainerReader {
 public:
  /// Which records of a format 2.x file the constructor takes into manifest(): all of them (tools,
  /// CheckpointReader), or none, for a restore that loads what it needs through records().
  enum class Records { kAll, kOnDemand };
  /// With `comm`: collective over it; the file is opened through MPI-IO and rank 0 reads and
  /// verifies the commit mark and manifest, then broadcasts them. Without: local, POSIX driver.
  /// Throws cairn::Error (on every rank, when collective) if the file is missing, not HDF5, not a
  /// cairn checkpoint, not committed, or its manifest is damaged or of a newer major format.
  /// With `prefetch_bytes` > 0 and a job of the saved size, each rank starts reading the packed
  /// region it wrote (at most that many bytes ahead of its use) once the manifest text has
  /// arrived, while it is decoded. (Started earlier, it slowed rank 0's read of the manifest,
  /// which every rank waits for, more than it gained.)
  /// `job`: when `comm` is one node of a job reading that node's part file, the job (its rank
  /// names this rank's writer); by default `comm` is the job.
  ContainerReader(const Comm* comm, std::string path, int64_t prefetch_bytes = 0,
                  Records records = Records::kAll, const Comm* job = nullptr);
  /// What a restore already knows of the file it read.
  struct Known {
    CommitMark mark;
    int64_t packed_bytes = 0;
  };
  /// Local, POSIX driver: reopens the file a collective restore read, for deferred restores. Reads
  /// only the commit mark, which must equal `known.mark` (kNotFound otherwise: the file was
  /// replaced); the manifest is the restore's, and manifest() stays empty. Cheap: only HDF5's
  /// superblock, the root group and the mark are read.
  ContainerReader(std::string path, const Known& known);
  ~ContainerReader();
  ContainerReader(const ContainerReader&) = delete;
  ContainerReader& operator=(const ContainerReader&) = delete;

  const Manifest& manifest() const noexcept { return manifest_; }
  /// Hands the decoded manifest over (a restore keeps it for as long as objects stay bound to it);
  /// reads keep working, manifest() is empty afterwards.
  Manifest take_manifest() noexcept { return std::move(manifest_); }
  const std::string& manifest_text() const noexcept { return manifest_text_; }
  const CommitMark& commit_mark() const noexcept { return mark_; }
  /// Format 2.x: the table and the records taken in so far (shared with whoever holds the
  /// manifest, which it adds records to). Null for a 1.x file.
  std::shared_ptr<SavedRecords> records() const noexcept { return records_; }
  /// Local. The bytes of writer `writer`'s record (format 2.x), unchecked: SavedRecords decodes
  /// them. Adds what it read to metadata_bytes_read().
  std::string read_record(int writer, int world_size);
  /// Local. Every writer's record, in rank order, with one read of the offsets and the records.
  std::vector<std::string> read_all_records(int world_size);
  /// Local. Bytes of cairn's metadata this rank took in since it opened the file: the commit mark
  /// and the manifest (read from the file by rank 0 or alone, received from rank 0 by the others)
  /// and its entries of the packed-region index. What a restore reads beyond its values.
  int64_t metadata_bytes_read() const noexcept { return metadata_bytes_read_; }
  const std::string& path() const noexcept { return path_; }
  /// This rank in the job (0 when opened without a communicator).
  int rank() const noexcept { return job_ ? job_->rank() : comm_ ? comm_->rank() : 0; }

  /// Local. Reads `region` of tensor `t` into a buffer laid out as `buffer_box`.
  void read_region(const TensorRecord& t, const Box& region, void* buffer, const Box& buffer_box);
  /// Local. Reads `bytes` bytes at `offset` of the packed dataset.
  void read_packed(int64_t offset, int64_t bytes, void* out);
  /// The read-ahead of this rank's packed region, if one was started; handed over once.
  std::unique_ptr<PackedPrefetch> take_prefetch() noexcept { return std::move(prefetch_); }
  /// Collective when opened with a communicator. Closes the file.
  void close();

 private:
  /// Local. Throws kNotFound / kInvalidArgument naming the path unless it is a file to open.
  void check_openable() const;
  void open_file();
  hid_t dataset(const std::string& name, const std::string& key);
  std::string read_root_attribute(const std::string& name);
  /// Reads a one-dimensional u8 dataset that must hold exactly `expected` bytes.
  std::string read_byte_dataset(const char* name, int64_t expected, int64_t limit);
  /// Rank 0 or alone: the commit mark, the header (or 1.x manifest) and, in 2.x, the table.
  void read_verified_metadata();
  /// Every rank: decodes what read_verified_metadata() read into manifest() (and records()).
  void decode_metadata(Records records);
  /// Reads writer `writer`'s record at `bounds` (its two record_offsets elements), checked against
  /// the records dataset.
  std::string read_record_at(int writer, const std::vector<int64_t>& bounds);
  /// Checks /cairn/record_offsets and returns elements [first, first + count).
  std::vector<int64_t> record_offsets(int first, int count, int world_size);
  /// Checks that /cairn/packed holds the manifest's packed_bytes, before anything is read from it.
  void check_packed_dataset();
  /// Reads this rank's own record ahead of its use, if the file holds one record per rank of this
  /// job (at the saved size, the only one a restore needs), while the disk is not yet busy with
  /// the read-ahead. Advisory like the read-ahead: any failure leaves the record to be read (and
  /// its error reported) when it is needed.
  void read_own_record_early() noexcept;
  /// Starts the read-ahead if the file says where this rank's packed region is (format 1.1) and
  /// the job has the saved size. Advisory: any failure only means no read-ahead.
  void start_prefetch(int64_t max_bytes) noexcept;

  const Comm* comm_;
  const Comm* job_ = nullptr;
  std::string path_;
  h5::File file_;
  std::map<std::string, h5::Dataset> datasets_;
  CommitMark mark_;
  std::string manifest_text_;
  std::string table_text_;  // format 2.x
  Manifest manifest_;
  std::shared_ptr<SavedRecords> records_;
  int64_t packed_bytes_ = 0;  // the manifest's, kept when the manifest is taken
  int64_t metadata_bytes_read_ = 0;
  std::unique_ptr<PackedPrefetch> prefetch_;
  struct EarlyRecord {
    int writer = -1;
    int world_size = 0;
    std::string bytes;
  };
  EarlyRecord early_record_;  // handed over by the first read_record() that asks for it
};

}  // namespace cairn::detail
