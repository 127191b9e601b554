// SPDX-License-Identifier: Apache-2.0
#pragma once
// Looking at a file that may not be a sound checkpoint, for the inspection tools: which of
// cairn's marks it carries, its manifest as found, and whether its datasets match a manifest.
// Unlike ContainerReader, nothing here throws for a bad file: it reports what it finds.
#include <cstdint>
#include <optional>
#include <string>

#include "storage/h5_handle.hpp"
#include "storage/manifest.hpp"

namespace cairn::detail {

class ContainerProbe {
 public:
  /// Local. Opens `path` read-only with the POSIX driver. If it does not open as HDF5,
  /// is_open() is false and open_failure() holds HDF5's innermost reason (may be empty).
  explicit ContainerProbe(const std::string& path);
  /// Local. As above, but a file that does not open is cairn::Error(kIo) "cannot reopen the
  /// checkpoint", with HDF5's error stack: for a file already probed as committed.
  static ContainerProbe reopen(const std::string& path);

  bool is_open() const noexcept { return file_.valid(); }
  const std::string& open_failure() const noexcept { return open_failure_; }

  /// Local. Whether the root carries the format attribute, and its text (empty when it is not a
  /// readable fixed-length string).
  bool has_format_attribute() const;
  std::string format_attribute() const;
  /// Local. Whether the root carries the commit mark (not whether it is sound).
  bool has_commit_mark() const;
  /// Local. Whether cairn's group exists.
  bool has_cairn_group() const;
  /// Local. The manifest dataset's bytes as found, unverified: nullopt when it is missing, not
  /// one-dimensional, empty, larger than `limit` bytes or unreadable. The size comes from the
  /// file: a caller that only wants a 2.x header passes a small limit.
  std::optional<std::string> unverified_manifest_text(int64_t limit = int64_t{1} << 32) const;

  /// Local. The dataset of tensor `t` against the manifest (shape and element type). Empty when
  /// consistent, else what is wrong.
  std::string check_tensor_dataset(const TensorRecord& t) const;
  /// Local. The packed dataset against the manifest's packed_bytes, as check_tensor_dataset().
  std::string check_packed_dataset(const Manifest& m) const;

 private:
  ContainerProbe() = default;
  void open(const std::string& path, bool throw_on_failure);
  bool link_exists(const char* name) const;

  h5::File file_;
  std::string open_failure_;
};

}  // namespace cairn::detail
