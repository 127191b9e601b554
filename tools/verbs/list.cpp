// SPDX-License-Identifier: Apache-2.0
// cairn list DIR [--json] [--node-local ROOT]
#include <cstdlib>
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/directory.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_list(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::ListOptions>();
  CLI::App* verb = app.add_subcommand(
      "list", "List every checkpoint-like file of DIR with its status and the state file's view");
  verb->footer(
      "Files: *.h5, *.h5.tmp-*, and names the state file records. Status: committed, temporary, "
      "uncommitted, corrupt, unsupported, not-a-checkpoint, unreadable, missing, node-local "
      "(recorded "
      "at the node-local level only), part (a node's part where a whole checkpoint belongs). Only "
      "commit marks and manifests are checked (cairn verify checks the data).\n"
      "Exit codes: 0 every non-temporary *.h5 is committed (or not a checkpoint), every node part "
      "found is sound and the state file is sound; 1 otherwise; 2 usage; 3 DIR missing.");
  verb->add_option("DIR", options->directory, "checkpoint directory")->required();
  verb->add_flag("--json", options->json, "print one JSON object");
  verb->add_option("--node-local", options->node_local_directory,
                   "node-local root of a multi-level manager (default: $CAIRN_NODE_LOCAL_DIR): "
                   "also check each checkpoint's parts in ROOT/node-<k> that this machine sees");
  verb->callback([options, &context] {
    // The batch script's setting, as the manager reads it, unless the option is given.
    if (options->node_local_directory.empty())
      if (const char* env = std::getenv("CAIRN_NODE_LOCAL_DIR"); env != nullptr)
        options->node_local_directory = env;
    context.exit_code = inspect::run_guarded("list", *context.out, *context.err, options->json,
                                             [&] { return inspect::list(*options, *context.out); });
  });
}

}  // namespace cairn::tools
