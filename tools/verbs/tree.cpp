// SPDX-License-Identifier: Apache-2.0
// cairn tree CKPT [--json]
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/describe.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_tree(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::TreeOptions>();
  CLI::App* verb = app.add_subcommand(
      "tree", "Show the object graph with named edges, shared objects and slot variables");
  verb->footer(
      "Each object is expanded once, under the first breadth-first path that reaches it (its path "
      "in the manifest); every other edge to it prints '-> PATH'. Slot variables are listed under "
      "their optimizer as '(slots)'.\n"
      "Exit codes: 0 ok; 1 not committed or damaged manifest; 2 usage; 3 cannot read.");
  verb->add_option("CKPT", options->path, "checkpoint file")->required();
  verb->add_flag("--json", options->json,
                 "print the graph as stored (every node once, edges and slots by node id)");
  verb->callback([options, &context] {
    context.exit_code = inspect::run_guarded("tree", *context.out, *context.err, options->json,
                                             [&] { return inspect::tree(*options, *context.out); });
  });
}

}  // namespace cairn::tools
