// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test hooks for the fault tests (mpi_tests/fault), at deterministic points of a save or restore:
//
//   CAIRN_FAULT_INJECT="<phase>[:<rank>]": the named rank (or every rank) kills itself with
//     SIGKILL when it reaches <phase>: a real kill -9 of a real process.
//   CAIRN_FAULT_PAUSE="<phase>[:<rank>]" with CAIRN_FAULT_PAUSE_FILE=<file>: the named rank (or
//     every rank) creates "<file>.paused-<rank>" at <phase> and waits until <file> exists (at
//     most 120 s), so that a test can delete the directory or remount the file system read-only
//     exactly there, without a timing race.
//   CAIRN_FAULT_THROW="<phase>[:<rank>]": the named rank (or every rank) throws a
//     std::runtime_error (not a cairn::Error) at <phase>, to test that collective code agrees on
//     foreign exceptions too.
//   CAIRN_FAULT_FREE_BYTES="<bytes>[:<rank>]": the named rank (or every rank) takes <bytes> as the
//     room left on the file system a save writes to, instead of asking statvfs
//     (the free-space check a save makes): one node's full disk, without filling one.
//   Each of the first three takes an optional "@<n>" after the rank (e.g. "during_data:0@2"): only
//   the n-th time this process reaches the phase as that rank, so that a test can target the
//   background drain to the shared file system, which runs the same phases as the node-local save
//   before it.
//
// Save phases: save_plan (walked and planned, any rank), save_checksums (before this rank's
// checksums), save_table (rank 0 about to build the table; a save that plans anew), before_data,
// during_data, save_record (before this rank encodes its record), save_table_checksums (rank 0
// about to merge the gathered checksums into the table), after_data, before_rename,
// before_state_file.
// Restore phases: restore_before_read (file open, manifest read, graph matched and validated on
// this rank, no value read yet), restore_during_read (about half of the dataset tensors read,
// packed values not yet), restore_after_read (every value read and verified, the file still open),
// restore_close (the file just closed). Status checks: status_report (a rank about to build its own
// report of what was restored). Unset in normal runs; the cost is three getenv calls per phase.
#include <cstdint>
#include <optional>

namespace cairn {

void fault_point(const char* phase, int rank);
/// CAIRN_FAULT_FREE_BYTES's bytes if it names `rank` (or every rank), else nothing.
std::optional<int64_t> injected_free_bytes(int rank);

}  // namespace cairn
