// SPDX-License-Identifier: Apache-2.0
#pragma once
// Debian's parallel HDF5 is built without thread safety: one thread of a process at a time may be
// inside HDF5. Background saves hold this lock for their whole HDF5 part; everything else that
// calls HDF5 takes it too. Collective operations first wait for the process's background saves
// (wait_for_background_saves), so that no rank blocks on its own lock inside a collective.
#include <mutex>

namespace cairn::detail {

std::recursive_mutex& hdf5_mutex();

/// Registers a background save as started / finished.
void background_save_started();
void background_save_finished();
/// Local. Blocks until this process has no background save in flight.
void wait_for_background_saves();

}  // namespace cairn::detail
