// SPDX-License-Identifier: Apache-2.0
#include "storage/mpio_access.hpp"

#include <memory>
#include <mutex>

#include "storage/h5_error.hpp"
#include "storage/h5_handle.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::detail {
namespace {

// What a communicator holds: one list per kind, made on first use. Plain identifiers, not
// h5::PropList: once MPI is finalized, HDF5 has closed them itself, and calling HDF5 then would
// start it anew without MPI.
struct Lists {
  hid_t ids[2] = {H5I_INVALID_HID, H5I_INVALID_HID};
  Lists() = default;
  Lists(const Lists&) = delete;
  Lists& operator=(const Lists&) = delete;
  ~Lists() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
    for (const hid_t id : ids)
      if (id >= 0) H5Pclose(id);  // frees HDF5's duplicate of the communicator
  }
};

h5::PropList make_list(MPI_Comm comm, MpioAccess access, const ErrorContext& ctx) {
  h5::PropList fapl(h5::check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", ctx));
  h5::check_status(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), "H5Pset_fapl_mpio", ctx);
  h5::check_status(H5Pset_file_locking(fapl.get(), false, true), "H5Pset_file_locking", ctx);
  if (access == MpioAccess::kRead) return fapl;
  // Datasets at least this large start on a multiple of it, which suits parallel file systems'
  // stripes and avoids read-modify-write of shared blocks between ranks.
  constexpr hsize_t kAlignment = 1 << 20;
  h5::check_status(H5Pset_alignment(fapl.get(), kAlignment, kAlignment), "H5Pset_alignment", ctx);
  // HDF5's metadata (a few KiB: the superblock, the groups, a dozen dataset headers) is written
  // by a few ranks with independent writes, not by a collective write of all ranks: a collective
  // write is a round of two-phase I/O among every rank at each flush and at the close, which
  // dominated a 128-rank save (docs/performance.md), and it is the one path through OMPIO's fcoll
  // components that the default independent mode would still take (docs/operations.md).
  h5::check_status(H5Pset_coll_metadata_write(fapl.get(), false), "H5Pset_coll_metadata_write",
                   ctx);
  h5::check_status(H5Pset_all_coll_metadata_ops(fapl.get(), true), "H5Pset_all_coll_metadata_ops",
                   ctx);
  return fapl;
}

}  // namespace

hid_t mpio_file_access(const Comm& comm, MpioAccess access, const ErrorContext& ctx) {
  std::shared_ptr<void>& slot = comm.io_cache();
  if (!slot) slot = std::make_shared<Lists>();
  hid_t& id = static_cast<Lists*>(slot.get())->ids[access == MpioAccess::kWrite ? 0 : 1];
  if (id < 0) id = make_list(comm.get(), access, ctx).release();
  return id;
}

}  // namespace cairn::detail
