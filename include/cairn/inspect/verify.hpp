// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn verify`: checks a checkpoint, or every checkpoint of a directory and its state file, in
// parallel when run under mpirun.
#include <cstdint>
#include <iosfwd>
#include <string>

namespace cairn {
class Comm;
}

namespace cairn::inspect {

struct VerifyOptions {
  std::string path;                         // a checkpoint file or a checkpoint directory
  bool json = false;                        // the verdict as one JSON object
  int max_problems = 20;                    // problems listed in full; all are counted
  int64_t chunk_bytes = int64_t{16} << 20;  // largest read (bounds memory per rank)
  /// For a directory: the node-local root of a multi-level manager. The parts of every checkpoint
  /// the state file records at the node-local level are verified too, in the node directories
  /// `<root>/node-<k>` this machine sees. Ignored for a file.
  std::string node_local_directory;
};

/// Collective over `comm` when it is not null, local otherwise. Checks, for a checkpoint: the
/// commit mark, the manifest's size and checksum, that the manifest decodes and is consistent
/// (known dtypes, boxes inside shapes, pieces covering their boxes, boxes covering every tensor
/// exactly once, packed ranges inside the packed data, graph references), that every tensor
/// dataset exists with the manifest's shape and element type, and the checksum of every piece and
/// state blob. Pieces are divided among the ranks of `comm` in contiguous runs of about equal
/// bytes; rank 0 gathers the problems and prints the verdict (other ranks print nothing). The
/// verdict and the problems listed do not depend on the number of ranks. For a directory: every
/// `*.h5` file that is not a temporary file, and the state file (parses, names an existing latest
/// checkpoint; names of missing files are warnings, node-local-only checkpoints notes), and with
/// `node_local_directory` every node part found of the node-local checkpoints (a part that is not
/// the one its node directory should hold is a problem). A part file (format 2.1) is verified as
/// a part: its writers' data, its replicated tensors and global state, and empty records for the
/// other writers. Returns kExitOk, kExitFailed on any damage,
/// or kExitIo when the file or directory cannot be opened at all; the same value on every rank.
int verify(const VerifyOptions& options, const Comm* comm, std::ostream& out);

}  // namespace cairn::inspect
