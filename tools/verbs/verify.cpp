// SPDX-License-Identifier: Apache-2.0
// cairn verify CKPT|DIR [--json] [--max-problems N] [--node-local ROOT] — in parallel under
// mpirun.
#include <mpi.h>

#include <cstdlib>
#include <memory>

#include "cairn/comm/comm.hpp"
#include "cairn/inspect/common.hpp"
#include "cairn/inspect/verify.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_verify(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::VerifyOptions>();
  CLI::App* verb = app.add_subcommand(
      "verify", "Check every checksum, coverage and consistency of a checkpoint or directory");
  verb->footer(
      "Checks the commit mark, the manifest's size, checksum and consistency (coverage of every "
      "tensor), every tensor dataset against the manifest, and the checksum of every piece and "
      "state value. For a directory: every *.h5 file (temporary files are skipped) and the state "
      "file, and with --node-local the node parts of its node-local checkpoints. A node-local part "
      "(format 2.1) is verified as that part only. Under mpirun the pieces are divided among the "
      "ranks; rank 0 prints the verdict, which "
      "does not depend on the number of ranks.\n"
      "Exit codes: 0 sound; 1 damaged; 2 usage; 3 the file cannot be opened at all (missing, not "
      "HDF5, truncated) or is of a newer format.");
  verb->add_option("PATH", options->path, "checkpoint file or checkpoint directory")->required();
  verb->add_flag("--json", options->json, "print the verdict as one JSON object");
  verb->add_option("--max-problems", options->max_problems,
                   "problems listed in full (all are counted)")
      ->check(integer_range(0, 1000000))
      ->capture_default_str();
  verb->add_option("--chunk-bytes", options->chunk_bytes, "largest single read per rank")
      ->check(integer_range(4096, int64_t{1} << 40, true))
      ->capture_default_str();
  verb->add_option("--node-local", options->node_local_directory,
                   "DIR only: node-local root of a multi-level manager (default: "
                   "$CAIRN_NODE_LOCAL_DIR): also verify the node parts of DIR's node-local "
                   "checkpoints found in ROOT/node-<k>");
  auto serial = std::make_shared<bool>(false);
  verb->add_flag("--serial", *serial,
                 "do not initialize MPI even when started by a launcher (e.g. when a rank of an "
                 "MPI job runs cairn as a child process)");
  verb->callback([options, serial, &context] {
    // The batch script's setting, as the manager reads it, unless the option is given.
    if (options->node_local_directory.empty())
      if (const char* env = std::getenv("CAIRN_NODE_LOCAL_DIR"); env != nullptr)
        options->node_local_directory = env;
    if (*serial || !launched_by_mpi()) {
      context.exit_code =
          inspect::run_guarded("verify", *context.out, *context.err, options->json,
                               [&] { return inspect::verify(*options, nullptr, *context.out); });
      return;
    }
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided);
    context.exit_code =
        inspect::run_guarded("verify", *context.out, *context.err, options->json, [&] {
          const Comm comm(MPI_COMM_WORLD);
          return inspect::verify(*options, &comm, *context.out);
        });
    MPI_Finalize();
  });
}

}  // namespace cairn::tools
