// cairn: inspect, verify and compare cairn checkpoints. Each verb lives in tools/verbs/ and is a
// thin layer over a library function in cairn/inspect/.
#include <cstdlib>
#include <iostream>

#include "cairn/inspect/common.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

int launch_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

}  // namespace cairn::tools

int main(int argc, char** argv) {
  using namespace cairn::tools;
  std::ostream nowhere(nullptr);
  VerbContext context;
  const bool speaks = launch_rank() == 0;
  context.out = speaks ? &std::cout : &nowhere;
  context.err = speaks ? &std::cerr : &nowhere;

  CLI::App app("cairn " CAIRN_VERSION
               ": inspect, verify and compare cairn checkpoints (format 1.x)",
               "cairn");
  app.set_version_flag("--version", "cairn " CAIRN_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 verification failed (damage, no commit mark, differences), 2 usage "
      "error, 3 cannot read (missing file, not HDF5 or truncated, newer format, I/O).\n"
      "Run 'cairn VERB --help' for a verb's options. Documentation: docs/cli.md.");
  add_info(app, context);
  add_ls(app, context);
  add_tree(app, context);
  add_verify(app, context);
  add_diff(app, context);
  add_cat(app, context);
  add_latest(app, context);
  add_list(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end parsing with exit code 0; every other parse error is a usage error.
    const int code = app.exit(e, *context.out, *context.err);
    return code == 0 ? cairn::inspect::kExitOk : cairn::inspect::kExitUsage;
  }
  context.out->flush();
  return context.exit_code;
}
