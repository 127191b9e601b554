#pragma once
// Opening a committed checkpoint container and reading regions of it. Reads are independent:
// each rank reads only what it needs.
#include <cstdint>
#include <map>
#include <string>

#include "cairn/comm/comm.hpp"
#include "storage/h5_handle.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

class ContainerReader {
 public:
  /// With `comm`: collective over it; the file is opened through MPI-IO and rank 0 reads and
  /// verifies the commit mark and manifest, then broadcasts them. Without: local, POSIX driver.
  /// Throws cairn::Error (on every rank, when collective) if the file is missing, not HDF5, not a
  /// cairn checkpoint, not committed, or its manifest is damaged or of a newer major format.
  ContainerReader(const Comm* comm, std::string path);
  ~ContainerReader();
  ContainerReader(const ContainerReader&) = delete;
  ContainerReader& operator=(const ContainerReader&) = delete;

  const Manifest& manifest() const noexcept { return manifest_; }
  const std::string& manifest_text() const noexcept { return manifest_text_; }
  const CommitMark& commit_mark() const noexcept { return mark_; }
  const std::string& path() const noexcept { return path_; }
  int rank() const noexcept { return comm_ ? comm_->rank() : 0; }

  /// Local. Reads `region` of tensor `t` into a buffer laid out as `buffer_box`.
  void read_region(const TensorRecord& t, const Box& region, void* buffer, const Box& buffer_box);
  /// Local. Reads `bytes` bytes at `offset` of the packed dataset.
  void read_packed(int64_t offset, int64_t bytes, void* out);
  /// Collective when opened with a communicator. Closes the file.
  void close();

 private:
  hid_t dataset(const std::string& name, const std::string& key);
  std::string read_root_attribute(const std::string& name);
  std::string read_manifest_bytes(int64_t expected);
  void load_manifest_locally();
  /// Checks that /cairn/packed holds the manifest's packed_bytes, before anything is read from it.
  void check_packed_dataset();
  /// Reads the commit mark and the manifest text, and checks the text against the mark's checksum.
  void read_verified_manifest_text();

  const Comm* comm_;
  std::string path_;
  h5::File file_;
  std::map<std::string, h5::Dataset> datasets_;
  CommitMark mark_;
  std::string manifest_text_;
  Manifest manifest_;
};

}  // namespace cairn::detail
