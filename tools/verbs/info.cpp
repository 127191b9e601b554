// SPDX-License-Identifier: Apache-2.0
// cairn info CKPT [--json]
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_info(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::InfoOptions>();
  CLI::App* verb = app.add_subcommand(
      "info",
      "Show a checkpoint's header: versions, world size, counters, sizes, times, commit state");
  verb->footer(
      "Reads the commit mark and the manifest only (cairn verify checks the data).\n"
      "Exit codes: 0 committed and the manifest verifies; 1 no commit mark or a damaged manifest "
      "(what can be read is still shown); 2 usage; 3 missing, not HDF5, truncated or newer "
      "format.");
  verb->add_option("CKPT", options->path, "checkpoint file")->required();
  verb->add_flag("--json", options->json, "print one JSON object");
  verb->callback([options, &context] {
    context.exit_code = inspect::run_guarded("info", *context.out, *context.err, options->json,
                                             [&] { return inspect::info(*options, *context.out); });
  });
}

}  // namespace cairn::tools
