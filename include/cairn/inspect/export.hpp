// SPDX-License-Identifier: Apache-2.0
#pragma once
// `cairn export CKPT OUT`: a checkpoint's tensors in a file that tools without cairn read:
// safetensors (Hugging Face, PyTorch, numpy) or plain HDF5 (h5py, h5dump, HDFView).
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace cairn::inspect {

struct ExportOptions {
  std::string path;                        // the checkpoint file
  std::string output;                      // ends in ".safetensors" or ".h5"
  std::vector<std::string> keys;           // fnmatch globs; a tensor is exported if any matches
  int64_t chunk_bytes = int64_t{8} << 20;  // largest read and write: bounds memory
  bool json = false;                       // the summary as one JSON object
};

/// Local. Writes every tensor of the committed checkpoint `options.path` (or those whose key
/// matches one of `options.keys`) to `options.output`, named by its full key (as `cairn ls` lists
/// it), with its dtype and global shape, values row-major. `.safetensors`: the header (offsets
/// computed from the manifest first), then each tensor's bytes in key order. `.h5`: one dataset
/// per tensor at its key as a group path, with the element types cairn's own files use. Tensors
/// are streamed in chunks of at most `chunk_bytes` and every piece read is checked against its
/// checksum; opaque states are not exported. The output is written under a temporary name and
/// renamed when complete, so a failure leaves no partial file. Prints a summary and returns
/// kExitOk. Throws cairn::Error: kInvalidArgument for an unknown output suffix, globs that match
/// no tensor or an output that is the checkpoint itself; kCorrupt when the checkpoint is damaged;
/// kIo when the output cannot be written.
int export_checkpoint(const ExportOptions& options, std::ostream& out);

}  // namespace cairn::inspect
