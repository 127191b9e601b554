// SPDX-License-Identifier: Apache-2.0
#include "inspect/probe.hpp"

#include <filesystem>

#include "cairn/inspect/common.hpp"
#include "storage/container_probe.hpp"
#include "storage/schema.hpp"
#include "storage/table.hpp"

namespace cairn::inspect::detail {
namespace {

namespace fs = std::filesystem;

using cairn::detail::schema::kCommitAttribute;
using cairn::detail::schema::kFormatAttribute;
using cairn::detail::schema::kGroup;

// The most of an unverified header a probe reads to name a damaged part.
constexpr int64_t kPartHeaderLimitBytes = int64_t{1} << 20;

// The manifest of an uncommitted file, as found: nothing vouches for it.
std::optional<PartInfo> part_of(const Header& header) {
  if (header.part_writers.empty()) return std::nullopt;
  return PartInfo{header.part_index, header.part_count, header.part_writers};
}

std::optional<Manifest> decode_unverified(const std::optional<std::string>& text,
                                          const std::string& path, int64_t& bytes,
                                          std::optional<PartInfo>& part) {
  if (!text) return std::nullopt;
  bytes = static_cast<int64_t>(text->size());
  try {
    const Header header = decode_header(*text, path);
    if (header.format_major == kLegacyMajor) return decode_manifest(*text, path);
    part = part_of(header);
    // Format 2.x: the header's scalars; the graph and tensors are in a table nothing vouches for.
    return manifest_from_header(header);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

std::string describe_ranks(const std::vector<int>& ranks) {
  const bool run =
      ranks.size() > 2 && ranks.back() - ranks.front() + 1 == static_cast<int>(ranks.size());
  if (run) return std::to_string(ranks.front()) + "-" + std::to_string(ranks.back());
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return out;
}

std::string describe_part(const PartInfo& part) {
  return "part " + std::to_string(part.index + 1) + " of " + std::to_string(part.count) +
         " of a node-local checkpoint (node " + std::to_string(part.index) + ", " +
         (part.writers.size() == 1 ? "writer " : "writers ") + describe_ranks(part.writers) + ")";
}

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
  std::optional<std::string> header_text;  // kept to name a damaged part
  {
    const cairn::detail::ContainerProbe file(path);
    if (!file.is_open()) {
      const std::string& cause = file.open_failure();
      p.status = FileStatus::kUnreadable;
      p.code = ErrorCode::kCorrupt;  // as ContainerReader reports it; exits 3 (throw_probe_error)
      p.problem.message = "cannot open as HDF5 (not an HDF5 file, truncated, or unreadable)";
      if (!cause.empty()) p.problem.message += "; HDF5 says: " + cause;
      return p;
    }
    p.has_format_attribute = file.has_format_attribute();
    if (p.has_format_attribute) p.format_attribute = file.format_attribute();
    if (!file.has_commit_mark()) {
      p.manifest =
          decode_unverified(file.unverified_manifest_text(), path, p.manifest_bytes, p.part);
      if (!p.has_format_attribute && !p.manifest && !file.has_cairn_group()) {
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
    // Only to name a damaged part: a 2.x header is a few hundred bytes, and a size read from a
    // damaged file must not become an allocation (the fuzzer found 2 GiB), nor a 1.x manifest be
    // read twice.
    header_text = file.unverified_manifest_text(kPartHeaderLimitBytes);
  }
  try {
    auto reader = std::make_unique<cairn::detail::ContainerReader>(nullptr, path);
    p.status = FileStatus::kCommitted;
    p.mark = reader->commit_mark();
    p.manifest = reader->manifest();
    p.manifest_bytes = static_cast<int64_t>(reader->manifest_text().size());
    if (const auto records = reader->records()) p.part = part_of(records->header());
    if (keep_reader) p.reader = std::move(reader);
  } catch (const Error& e) {
    p.status = e.code() == ErrorCode::kVersion ? FileStatus::kUnsupported : FileStatus::kCorrupt;
    p.code = e.code() == ErrorCode::kVersion ? ErrorCode::kVersion : ErrorCode::kCorrupt;
    p.problem = {e.context().key, e.context().box, bare_message(e)};
    // A damaged part is still named as a part (from its header, which nothing vouches for then),
    // so that a damaged record of writer r reads as part k's, not as a whole checkpoint's.
    try {
      if (header_text) p.part = part_of(decode_header(*header_text, path));
    } catch (const Error&) {
      p.part.reset();
    }
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
