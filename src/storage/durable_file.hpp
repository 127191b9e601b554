// SPDX-License-Identifier: Apache-2.0
#pragma once
// POSIX steps of the commit protocol: fsync, rename, directory fsync, atomic small-file replace,
// and what a save checks of the place where it creates its file.
#include <cstdint>
#include <string>

#include "cairn/core/error.hpp"

namespace cairn {

/// Local. fsync()s an existing file; throws cairn::Error(kIo) naming the path and errno text.
void fsync_path(const std::string& path);
/// Local. fsync()s the directory containing `path` so that a rename inside it is durable.
void fsync_parent_directory(const std::string& path);
/// Local. rename(2) `from` to `to` and makes it durable.
void durable_rename(const std::string& from, const std::string& to);
/// Local. Replaces `path` with `contents` atomically: temp file in the same directory, fsync,
/// rename, directory fsync. A crash leaves either the old or the new file, never a mix.
void write_file_atomically(const std::string& path, const std::string& contents);
/// Local. Whole file as bytes; throws cairn::Error(kIo) if it cannot be read.
std::string read_whole_file(const std::string& path);
/// Local. The directory part of `path` ("." if none).
std::string parent_directory(const std::string& path);
/// Local. The bytes a write by this process can still use on the file system of `path`'s
/// directory (statvfs: f_bavail x f_frsize; f_bfree for root, who may use the reserved blocks), or
/// -1 when the file system does not say: statvfs fails, or reports no blocks at all (as some FUSE
/// mounts do).
int64_t free_bytes_for(const std::string& path);
/// Local. Throws cairn::Error(kIo) with `ctx` unless this process can create a file in `path`'s
/// directory: the directory exists here, is a directory, and may be written and searched.
void check_directory_usable(const std::string& path, const ErrorContext& ctx);

}  // namespace cairn
