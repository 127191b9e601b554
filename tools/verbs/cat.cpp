// SPDX-License-Identifier: Apache-2.0
// cairn cat CKPT KEY [--slice a:b,c:d] [--limit N] [--rank R] [--json]
#include <memory>

#include "cairn/inspect/cat.hpp"
#include "cairn/inspect/common.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_cat(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::CatOptions>();
  CLI::App* verb = app.add_subcommand(
      "cat", "Print the values of a tensor or a slice of it, or the bytes of opaque state");
  verb->footer(
      "KEY may omit the /.ATTRIBUTES/VARIABLE_VALUE or /.ATTRIBUTES/STATE suffix. Only the "
      "checksummed pieces that hold the printed elements are read, each whole (to check its "
      "checksum).\n"
      "Exit codes: 0 ok; 1 damaged (checksum mismatch, not committed); 2 usage, unknown key or bad "
      "slice; 3 cannot read.");
  verb->add_option("CKPT", options->path, "checkpoint file")->required();
  verb->add_option("KEY", options->key, "tensor or state key (see cairn ls)")->required();
  verb->add_option("--slice", options->slice,
                   "per axis i, a:b, a:, :b or : (comma-separated; negative counts from the end)");
  verb->add_option("--limit", options->limit, "print at most N elements (bytes for state); 0: all")
      ->check(integer_range(0, INT64_MAX))
      ->capture_default_str();
  verb->add_option("--rank", options->rank, "for per-rank state: the saving rank whose value")
      ->check(integer_range(0, INT32_MAX))
      ->capture_default_str();
  verb->add_flag("--json", options->json,
                 "print one JSON object (values as a flat row-major array; state as hex)");
  verb->callback([options, &context] {
    context.exit_code = inspect::run_guarded("cat", *context.out, *context.err, options->json,
                                             [&] { return inspect::cat(*options, *context.out); });
  });
}

}  // namespace cairn::tools
