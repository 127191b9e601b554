// SPDX-License-Identifier: Apache-2.0
#pragma once
// Classifying a file as a checkpoint (committed, uncommitted, damaged, ...) and opening it for
// inspection. Unlike ContainerReader, a probe never throws for a bad file: it says what is wrong.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "storage/container_reader.hpp"
#include "storage/manifest.hpp"

namespace cairn::inspect::detail {

enum class FileStatus {
  kCommitted,      // commit mark, manifest size and checksum verified, manifest decodes
  kUncommitted,    // cairn's marks but no commit mark: an interrupted save or a temporary file
  kCorrupt,        // a commit mark, but the mark or the manifest is damaged or inconsistent
  kUnsupported,    // a manifest of a newer major format
  kNotCheckpoint,  // an HDF5 file without any of cairn's marks
  kUnreadable,     // not an HDF5 file, truncated, a directory, or unreadable
  kMissing,        // no such file
};

/// "committed", "uncommitted", "corrupt", "unsupported", "not-a-checkpoint", "unreadable",
/// "missing".
const char* status_name(FileStatus status) noexcept;

/// A problem found in a checkpoint: the key and box it concerns (may be empty) and what is wrong.
struct Problem {
  std::string key;
  std::string box;
  std::string message;
};

/// Format 2.1: the file is one node's part of a node-local checkpoint. It holds its writers'
/// records and data and its own copy of the replicated tensors and global state, not the whole
/// checkpoint.
struct PartInfo {
  int index = 0;  // the node's number, from 0
  int count = 1;  // parts (nodes) of the checkpoint
  std::vector<int> writers;
};

/// "part 1 of 2 of a node-local checkpoint (writers 0, 1)".
std::string describe_part(const PartInfo& part);
/// "0, 1, 2" or "0-63" for a contiguous run.
std::string describe_ranks(const std::vector<int>& ranks);

struct Probe {
  std::string path;
  FileStatus status = FileStatus::kMissing;
  Problem problem;                        // why it is not a sound committed checkpoint
  ErrorCode code = ErrorCode::kNotFound;  // the error a reader raises for it
  int64_t file_bytes = -1;
  std::optional<CommitMark> mark;
  std::optional<Manifest> manifest;  // verified when committed; unverified when uncommitted
  std::optional<PartInfo> part;      // a part file (verified when committed)
  int64_t manifest_bytes = 0;
  bool has_format_attribute = false;
  std::string format_attribute;                            // the cairn_format text, if present
  std::unique_ptr<cairn::detail::ContainerReader> reader;  // committed, when asked for
};

/// Local. Classifies `path` and reads what it can. With `keep_reader`, a committed checkpoint is
/// left open in `reader` for data reads.
Probe probe_file(const std::string& path, bool keep_reader = false);

/// Local. Throws the cairn::Error a reader raises for a probe that is not committed (a VerbError
/// exiting 3 for a file that does not open as HDF5).
[[noreturn]] void throw_probe_error(const Probe& probe);

/// Local. Probes `path` and returns it open; calls throw_probe_error() unless it is committed.
Probe open_committed(const std::string& path);

}  // namespace cairn::inspect::detail
