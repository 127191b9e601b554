// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn info`, `cairn ls` and `cairn tree`: what a checkpoint holds, read from its manifest alone
// (no tensor data is read; `cairn verify` checks the data).
#include <iosfwd>
#include <string>

namespace cairn::inspect {

struct InfoOptions {
  std::string path;   // the checkpoint file
  bool json = false;  // one JSON object instead of aligned text
};

/// Local. Prints the checkpoint's format and library version, world size at save, save counter,
/// counts and bytes of tensors and states, creation and commit times and its commit state.
/// Returns kExitOk for a committed checkpoint whose manifest verifies, kExitFailed (after printing
/// what could be read) for a file without a commit mark or with a damaged manifest. Throws
/// cairn::Error when the file is missing, is not HDF5 or is of a newer format.
int info(const InfoOptions& options, std::ostream& out);

struct LsOptions {
  std::string path;
  bool json = false;
};

/// Local. Lists the tensors sorted by key (dtype, global shape, bytes, layout at save, storage),
/// then the opaque states. Throws cairn::Error unless the file is a committed checkpoint.
int ls(const LsOptions& options, std::ostream& out);

struct TreeOptions {
  std::string path;
  bool json = false;  // the graph as stored: {"path", "nodes": [{"id", "path", "kind", ...}]}
};

/// Local. Prints the object graph from the root: named edges, each object expanded once (under its
/// first breadth-first path; other edges to it print a back-reference), values with their dtype
/// and shape, and each optimizer's slot variables under the optimizer. Throws cairn::Error unless
/// the file is a committed checkpoint.
int tree(const TreeOptions& options, std::ostream& out);

}  // namespace cairn::inspect
