// SPDX-License-Identifier: Apache-2.0
#pragma once
// The file-access property lists of a communicator's parallel files, made once per communicator.
// H5Pset_fapl_mpio duplicates the communicator, a collective that cost 4-12 ms at 128 processes on
// 2 cores (docs/performance.md); every file open duplicates it once more inside HDF5, so a list
// made per file paid for two duplications per save and per restore.
#include <hdf5.h>

#include "cairn/comm/comm.hpp"
#include "cairn/core/error.hpp"

namespace cairn::detail {

enum class MpioAccess {
  kWrite,  // a checkpoint being written: cairn's alignment and metadata settings
  kRead,   // a checkpoint being read
};

/// Collective over `comm` the first time a kind is asked for on `comm` (every save and restore is
/// collective and runs in the same order on every rank, so every rank asks then); local
/// afterwards. The caller holds hdf5_mutex(). The list belongs to `comm` (Comm::io_cache): closed
/// when the communicator is freed, so the application must not close HDF5 (H5close) while a Comm
/// holding lists lives. Throws cairn::Error (kHdf5) with `ctx` if HDF5 cannot make it.
hid_t mpio_file_access(const Comm& comm, MpioAccess access, const ErrorContext& ctx);

}  // namespace cairn::detail
