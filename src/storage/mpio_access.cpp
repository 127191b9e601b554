// SPDX-License-Identifier: Apache-2.0
#include "storage/mpio_access.hpp"

#include <memory>
#include <mutex>

#include "storage/h5_error.hpp"
#include "storage/h5_handle.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::detail {
namespace {

// What hangs off a communicator (MPI attribute caching): its two lists.
struct Lists {
  h5::PropList write;
  h5::PropList read;
};

// MPI calls it when the communicator is freed; the lists' own duplicates go with them. A
// communicator still alive at MPI_Finalize is not freed, and HDF5 closes every list as it shuts
// down with MPI.
int free_lists(MPI_Comm, int, void* value, void*) {
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  std::unique_ptr<Lists> owned(static_cast<Lists*>(value));
  return MPI_SUCCESS;
}

int lists_key(const ErrorContext& ctx) {
  static const int key = [&] {
    int k = MPI_KEYVAL_INVALID;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, free_lists, &k, nullptr) != MPI_SUCCESS)
      throw Error(ErrorCode::kMpi, "MPI_Comm_create_keyval failed", ctx);
    return k;
  }();
  return key;
}

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

hid_t mpio_file_access(MPI_Comm comm, MpioAccess access, const ErrorContext& ctx) {
  const int key = lists_key(ctx);
  void* value = nullptr;
  int found = 0;
  if (MPI_Comm_get_attr(comm, key, &value, &found) != MPI_SUCCESS)
    throw Error(ErrorCode::kMpi, "MPI_Comm_get_attr failed", ctx);
  if (!found) {
    auto made = std::make_unique<Lists>();
    // Both at once: whichever a rank asks for first, every rank makes the same collective calls.
    made->write = make_list(comm, MpioAccess::kWrite, ctx);
    made->read = make_list(comm, MpioAccess::kRead, ctx);
    if (MPI_Comm_set_attr(comm, key, made.get()) != MPI_SUCCESS)
      throw Error(ErrorCode::kMpi, "MPI_Comm_set_attr failed", ctx);
    value = made.release();  // the communicator owns it now (free_lists)
  }
  const Lists& lists = *static_cast<const Lists*>(value);
  return access == MpioAccess::kWrite ? lists.write.get() : lists.read.get();
}

}  // namespace cairn::detail
