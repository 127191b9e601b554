// SPDX-License-Identifier: Apache-2.0
#pragma once
// Inspection of a checkpoint from a single process: list variables, load a variable or a slice.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/tensor/box.hpp"
#include "cairn/tensor/dtype.hpp"

namespace cairn {

namespace detail {
class ContainerReader;
}

struct VariableInfo {
  std::string key;
  DType dtype;
  Shape shape;
  std::string layout;  // how it was sharded at save
  int64_t bytes = 0;
};

class CheckpointReader {
 public:
  /// Local. Opens `path` read-only (no MPI needed); throws cairn::Error if it is not a committed
  /// cairn checkpoint of a supported format.
  explicit CheckpointReader(const std::string& path);
  ~CheckpointReader();
  CheckpointReader(CheckpointReader&&) noexcept;
  CheckpointReader& operator=(CheckpointReader&&) noexcept;

  /// Local. Every tensor, sorted by key.
  std::vector<VariableInfo> list_variables() const;
  /// Local. The bytes of `key` (or of `slice` of it), row-major, checksums verified.
  std::vector<std::byte> load_bytes(const std::string& key,
                                    const std::optional<Box>& slice = std::nullopt) const;
  template <class T>
  std::vector<T> load(const std::string& key,
                      const std::optional<Box>& slice = std::nullopt) const {
    check_dtype(key, dtype_of<T>);
    auto raw = load_bytes(key, slice);
    std::vector<T> out(raw.size() / sizeof(T));
    if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());
    return out;
  }
  /// Local. Bytes of opaque state `key`; for per-rank state, the value rank `rank` saved.
  std::string load_state(const std::string& key, int rank = 0) const;

  int64_t save_counter() const;
  int world_size() const;
  const std::string& path() const;
  /// Local. The JSON text of /cairn/manifest: the header of a format 2.x file (its global
  /// scalars), the whole manifest of a 1.x file.
  std::string manifest_json() const;

 private:
  void check_dtype(const std::string& key, DType requested) const;
  std::size_t tensor_index(const std::string& key) const;
  std::unique_ptr<detail::ContainerReader> impl_;
  std::unordered_map<std::string, std::size_t> index_;  // key -> position in the manifest
};

}  // namespace cairn
