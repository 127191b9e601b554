// SPDX-License-Identifier: Apache-2.0
// cairn latest DIR [--json]
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/directory.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_latest(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::LatestOptions>();
  CLI::App* verb = app.add_subcommand(
      "latest", "Print the path of the latest checkpoint recorded in DIR's state file");
  verb->footer(
      "Exit codes: 0 printed; 1 no checkpoint recorded (no state file, or it names none), nothing "
      "printed; 2 usage, or DIR is not a directory; 3 DIR missing, the state file damaged, or the "
      "file it names missing.");
  verb->add_option("DIR", options->directory, "checkpoint directory")->required();
  verb->add_flag("--json", options->json,
                 "print {\"directory\", \"latest\"} (latest is null when none is recorded)");
  verb->callback([options, &context] {
    context.exit_code =
        inspect::run_guarded("latest", *context.out, *context.err, options->json, [&] {
          const int code = inspect::latest(*options, *context.out);
          if (code == inspect::kExitFailed)
            *context.err << "cairn latest: no checkpoint recorded in " << options->directory
                         << '\n';
          return code;
        });
  });
}

}  // namespace cairn::tools
