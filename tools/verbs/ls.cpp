// SPDX-License-Identifier: Apache-2.0
// cairn ls CKPT [--json]
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_ls(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::LsOptions>();
  CLI::App* verb = app.add_subcommand(
      "ls", "List tensors sorted by key (dtype, shape, bytes, layout, storage), then states");
  verb->footer("Exit codes: 0 ok; 1 not committed or damaged manifest; 2 usage; 3 cannot read.");
  verb->add_option("CKPT", options->path, "checkpoint file")->required();
  verb->add_flag("--json", options->json, "print one JSON object");
  verb->callback([options, &context] {
    context.exit_code = inspect::run_guarded("ls", *context.out, *context.err, options->json,
                                             [&] { return inspect::ls(*options, *context.out); });
  });
}

}  // namespace cairn::tools
