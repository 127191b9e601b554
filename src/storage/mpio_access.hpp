// SPDX-License-Identifier: Apache-2.0
#pragma once
// The file-access property lists of a communicator's parallel files, made once per communicator.
// H5Pset_fapl_mpio duplicates the communicator, a collective that cost 5-12 ms at 128 processes on
// 2 cores (docs/performance.md); every file open duplicates it once more inside HDF5, so a list
// made per file paid for two duplications per save and per restore.
#include <hdf5.h>
#include <mpi.h>

#include "cairn/core/error.hpp"

namespace cairn::detail {

enum class MpioAccess {
  kWrite,  // a checkpoint being written: cairn's alignment and metadata settings
  kRead,   // a checkpoint being read
};

/// Collective over `comm` the first time it is asked for `comm` (every rank must ask in the same
/// order, as every rank opens the same files), local afterwards. The caller holds hdf5_mutex().
/// The list belongs to the communicator: it is closed when the communicator is freed. Throws
/// cairn::Error(kIo) with `ctx` if HDF5 cannot make it.
hid_t mpio_file_access(MPI_Comm comm, MpioAccess access, const ErrorContext& ctx);

}  // namespace cairn::detail
