// SPDX-License-Identifier: Apache-2.0
// cairn export CKPT OUT [--keys GLOB]... [--json] — under mpirun, rank 0 writes.
#include <mpi.h>

#include <memory>

#include "cairn/comm/comm.hpp"
#include "cairn/inspect/common.hpp"
#include "cairn/inspect/export.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_export(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::ExportOptions>();
  CLI::App* verb = app.add_subcommand(
      "export",
      "Write the tensors to a .safetensors or plain .h5 file that tools without cairn read");
  verb->footer(
      "OUT's suffix picks the format: .safetensors (Hugging Face: PyTorch, numpy, JAX) or .h5 "
      "(plain HDF5: one dataset per tensor at its key; h5py, h5dump, HDFView). Tensors are named "
      "by their full key (as cairn ls lists them), keep their dtype and global shape, and are "
      "streamed in chunks (memory stays bounded), every piece checked against its checksum. "
      "Opaque states are not exported. The file is written under a temporary name and renamed "
      "when complete. Under mpirun, rank 0 writes the file and the other ranks wait for its "
      "exit code.\n"
      "Exit codes: 0 written; 1 the checkpoint is damaged or not committed; 2 usage, unknown "
      "suffix, --keys matching nothing; 3 cannot read the checkpoint or write OUT.");
  verb->add_option("CKPT", options->path, "checkpoint file")->required();
  verb->add_option("OUT", options->output, "output file: *.safetensors or *.h5")->required();
  verb->add_option("--keys", options->keys,
                   "export only tensors whose key matches this glob (fnmatch: * also matches /); "
                   "repeatable");
  verb->add_option("--chunk-bytes", options->chunk_bytes, "largest single read and write")
      ->check(integer_range(64, int64_t{1} << 40, true))
      ->capture_default_str();
  verb->add_flag("--json", options->json, "print the summary as one JSON object");
  auto serial = std::make_shared<bool>(false);
  verb->add_flag("--serial", *serial,
                 "do not initialize MPI even when started by a launcher (e.g. when a rank of an "
                 "MPI job runs cairn as a child process)");
  verb->callback([options, serial, &context] {
    auto run = [&] {
      return inspect::run_guarded("export", *context.out, *context.err, options->json, [&] {
        return inspect::export_checkpoint(*options, *context.out);
      });
    };
    if (*serial || !launched_by_mpi()) {
      context.exit_code = run();
      return;
    }
    // One writer: ranks writing the same file would need a parallel writer for .h5; rank 0
    // streams it, and every rank exits with its code.
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided);
    context.exit_code =
        inspect::run_guarded("export", *context.out, *context.err, options->json, [&] {
          const Comm comm(MPI_COMM_WORLD);
          return inspect::run_on_rank_zero(comm, run);
        });
    MPI_Finalize();
  });
}

}  // namespace cairn::tools
