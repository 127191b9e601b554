// SPDX-License-Identifier: Apache-2.0
#include "inspect/probe.hpp"

#include <filesystem>

#include "cairn/inspect/common.hpp"
#include "storage/h5_error.hpp"
#include "storage/h5_handle.hpp"
#include "storage/h5_types.hpp"
#include "storage/schema.hpp"

namespace cairn::inspect::detail {
namespace {

namespace fs = std::filesystem;

using cairn::detail::schema::kCommitAttribute;
using cairn::detail::schema::kFormatAttribute;
using cairn::detail::schema::kGroup;
using cairn::detail::schema::kManifestDataset;
constexpr int64_t kMaxManifestBytes = int64_t{1} << 32;

// The innermost frame of the HDF5 error stack: the actual cause ("truncated file: eof = ...").
std::string hdf5_cause() {
  const std::string stack = h5::take_error_stack();
  std::string last;
  std::size_t start = 0;
  while (start < stack.size()) {
    std::size_t end = stack.find('\n', start);
    if (end == std::string::npos) end = stack.size();
    std::string line = stack.substr(start, end - start);
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos) last = line.substr(first);
    start = end + 1;
  }
  return last;
}

bool link_exists(hid_t file, const char* path) {
  const htri_t rc = H5Lexists(file, path, H5P_DEFAULT);
  h5::take_error_stack();
  return rc > 0;
}

std::string read_string_attribute(hid_t file, const char* name) {
  h5::Attribute attr(H5Aopen(file, name, H5P_DEFAULT));
  if (!attr.valid()) return {};
  h5::Datatype type(H5Aget_type(attr.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    return {};
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0 || size > (1u << 20)) return {};
  std::string value(size, '\0');
  if (H5Aread(attr.get(), type.get(), value.data()) < 0) return {};
  if (auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  return value;
}

// The manifest of an uncommitted file, as found: nothing vouches for it.
std::optional<Manifest> read_unverified_manifest(hid_t file, const std::string& path,
                                                 int64_t& bytes) {
  if (!link_exists(file, kGroup) || !link_exists(file, kManifestDataset)) return std::nullopt;
  h5::Dataset ds(H5Dopen2(file, kManifestDataset, H5P_DEFAULT));
  if (!ds.valid()) return std::nullopt;
  h5::Dataspace space(H5Dget_space(ds.get()));
  if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1) return std::nullopt;
  const int64_t n = H5Sget_simple_extent_npoints(space.get());
  if (n <= 0 || n > kMaxManifestBytes) return std::nullopt;
  std::string text(static_cast<std::size_t>(n), '\0');
  h5::Datatype type = h5::make_byte_type();
  if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0)
    return std::nullopt;
  bytes = n;
  try {
    return decode_manifest(text, path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

const char* status_name(FileStatus status) noexcept {
  switch (status) {
    case FileStatus::kCommitted:
      return "committed";
    case FileStatus::kUncommitted:
      return "uncommitted";
    case FileStatus::kCorrupt:
      return "corrupt";
    case FileStatus::kUnsupported:
      return "unsupported";
    case FileStatus::kNotCheckpoint:
      return "not-a-checkpoint";
    case FileStatus::kUnreadable:
      return "unreadable";
    case FileStatus::kMissing:
      return "missing";
  }
  return "unknown";
}

Probe probe_file(const std::string& path, bool keep_reader) {
  h5::silence_error_printing();
  Probe p;
  p.path = path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    p.status = FileStatus::kMissing;
    p.code = ErrorCode::kNotFound;
    p.problem.message = "no such file";
    return p;
  }
  if (!fs::is_regular_file(st)) {
    p.status = FileStatus::kUnreadable;
    // As ContainerReader reports them: a directory is a wrong argument.
    p.code = fs::is_directory(st) ? ErrorCode::kInvalidArgument : ErrorCode::kIo;
    p.problem.message =
        fs::is_directory(st) ? "is a directory, not a checkpoint file" : "is not a regular file";
    return p;
  }
  p.file_bytes = static_cast<int64_t>(fs::file_size(path, ec));
  {
    h5::PropList fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_file_locking(fapl.get(), false, true);
    h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!file.valid()) {
      const std::string cause = hdf5_cause();
      p.status = FileStatus::kUnreadable;
      p.code = ErrorCode::kCorrupt;  // as ContainerReader reports it; exits 3 (throw_probe_error)
      p.problem.message = "cannot open as HDF5 (not an HDF5 file, truncated, or unreadable)";
      if (!cause.empty()) p.problem.message += "; HDF5 says: " + cause;
      return p;
    }
    p.has_format_attribute = H5Aexists(file.get(), kFormatAttribute) > 0;
    if (p.has_format_attribute)
      p.format_attribute = read_string_attribute(file.get(), kFormatAttribute);
    const bool committed = H5Aexists(file.get(), kCommitAttribute) > 0;
    h5::take_error_stack();
    if (!committed) {
      p.manifest = read_unverified_manifest(file.get(), path, p.manifest_bytes);
      h5::take_error_stack();
      if (!p.has_format_attribute && !p.manifest && !link_exists(file.get(), kGroup)) {
        p.status = FileStatus::kNotCheckpoint;
        p.code = ErrorCode::kCorrupt;
        p.problem.message = std::string("an HDF5 file without cairn's marks (no ") +
                            kCommitAttribute + " or " + kFormatAttribute + " attribute, no " +
                            kGroup + " group): not a cairn checkpoint";
        return p;
      }
      p.status = FileStatus::kUncommitted;
      p.code = ErrorCode::kCorrupt;
      p.problem.message =
          "no commit mark: a save that did not complete (or a temporary file); readers refuse it";
      return p;
    }
  }
  try {
    auto reader = std::make_unique<cairn::detail::ContainerReader>(nullptr, path);
    p.status = FileStatus::kCommitted;
    p.mark = reader->commit_mark();
    p.manifest = reader->manifest();
    p.manifest_bytes = static_cast<int64_t>(reader->manifest_text().size());
    if (keep_reader) p.reader = std::move(reader);
  } catch (const Error& e) {
    p.status = e.code() == ErrorCode::kVersion ? FileStatus::kUnsupported : FileStatus::kCorrupt;
    p.code = e.code() == ErrorCode::kVersion ? ErrorCode::kVersion : ErrorCode::kCorrupt;
    p.problem = {e.context().key, e.context().box, bare_message(e)};
  }
  return p;
}

void throw_probe_error(const Probe& probe) {
  const Error error(probe.code, probe.problem.message,
                    {.checkpoint = probe.path, .key = probe.problem.key, .box = probe.problem.box});
  // A file that does not open as HDF5 is damage to the library, but cannot be read at all.
  if (probe.status == FileStatus::kUnreadable && probe.code == ErrorCode::kCorrupt)
    throw VerbError(error, kExitIo);
  throw error;
}

Probe open_committed(const std::string& path) {
  Probe p = probe_file(path, true);
  if (p.status != FileStatus::kCommitted) throw_probe_error(p);
  return p;
}

}  // namespace cairn::inspect::detail
