// SPDX-License-Identifier: Apache-2.0
#include "cairn/checkpoint/reader.hpp"

#include <algorithm>

#include "storage/container_reader.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/tensor_read.hpp"

namespace cairn {
namespace {

// Reads of a single variable by one process are staged in windows of this size.
constexpr int64_t kReaderStagingBytes = int64_t{64} << 20;

}  // namespace

CheckpointReader::CheckpointReader(const std::string& path) {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  impl_ = std::make_unique<detail::ContainerReader>(nullptr, path);
  const auto& tensors = impl_->manifest().tensors;
  for (std::size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].key, i);
}

std::size_t CheckpointReader::tensor_index(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end())
    throw Error(ErrorCode::kNotFound, "no tensor with this key in the checkpoint",
                {.checkpoint = impl_->path(), .key = key, .operation = "load"});
  return it->second;
}
CheckpointReader::~CheckpointReader() {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  impl_.reset();
}
CheckpointReader::CheckpointReader(CheckpointReader&&) noexcept = default;
CheckpointReader& CheckpointReader::operator=(CheckpointReader&& other) noexcept {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  impl_ = std::move(other.impl_);
  index_ = std::move(other.index_);
  return *this;
}

std::vector<VariableInfo> CheckpointReader::list_variables() const {
  std::vector<VariableInfo> out;
  for (const TensorRecord& t : impl_->manifest().tensors)
    out.push_back({t.key, t.dtype, t.shape, t.layout,
                   shape_volume(t.shape) * static_cast<int64_t>(dtype_size(t.dtype))});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

std::vector<std::byte> CheckpointReader::load_bytes(const std::string& key,
                                                    const std::optional<Box>& slice) const {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  const TensorRecord& t = impl_->manifest().tensors[tensor_index(key)];
  const Box box = slice.value_or(Box::whole(t.shape));
  if (box.rank() != t.shape.size() || box.offset.size() != t.shape.size() ||
      !inside_shape(box, t.shape))
    throw Error(ErrorCode::kInvalidArgument,
                "slice " + box.to_string() + " does not fit shape " + shape_to_string(t.shape),
                {.checkpoint = impl_->path(), .key = key, .operation = "load"});
  std::vector<std::byte> out(static_cast<std::size_t>(box.volume()) * dtype_size(t.dtype));
  if (out.empty()) return out;
  detail::PackedReadBatch packed;
  detail::read_tensor(*impl_, t, {box}, {out.data()}, packed);
  packed.run(*impl_, kReaderStagingBytes);
  return out;
}

std::string CheckpointReader::load_state(const std::string& key, int rank) const {
  std::lock_guard<std::recursive_mutex> hdf5(detail::hdf5_mutex());
  for (const StateRecord& s : impl_->manifest().states) {
    if (s.key != key) continue;
    for (const StateBlob& blob : s.blobs) {
      if (s.scope == SavedScope::kPerRank && blob.rank != rank) continue;
      std::string value;
      detail::PackedReadBatch packed;
      detail::read_state_blob(s, blob, value, packed);
      packed.run(*impl_, kReaderStagingBytes);
      return value;
    }
    throw Error(ErrorCode::kNotFound, "no value saved by rank " + std::to_string(rank),
                {.checkpoint = impl_->path(), .key = key, .operation = "load state"});
  }
  throw Error(ErrorCode::kNotFound, "no opaque state with this key in the checkpoint",
              {.checkpoint = impl_->path(), .key = key, .operation = "load state"});
}

void CheckpointReader::check_dtype(const std::string& key, DType requested) const {
  const TensorRecord& t = impl_->manifest().tensors[tensor_index(key)];
  if (t.dtype != requested)
    throw Error(ErrorCode::kInvalidArgument,
                std::string("the tensor is ") + std::string(dtype_name(t.dtype)) + ", requested " +
                    std::string(dtype_name(requested)),
                {.checkpoint = impl_->path(), .key = key, .operation = "load"});
}

int64_t CheckpointReader::save_counter() const {
  return impl_->manifest().save_counter;
}
int CheckpointReader::world_size() const {
  return impl_->manifest().world_size;
}
const std::string& CheckpointReader::path() const {
  return impl_->path();
}
std::string CheckpointReader::manifest_json() const {
  return impl_->manifest_text();
}

}  // namespace cairn
