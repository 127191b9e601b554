// SPDX-License-Identifier: Apache-2.0
// cairn diff A B [--json]
#include <memory>

#include "cairn/inspect/common.hpp"
#include "cairn/inspect/diff.hpp"
#include "verbs/verbs.hpp"

namespace cairn::tools {

void add_diff(CLI::App& app, VerbContext& context) {
  auto options = std::make_shared<inspect::DiffOptions>();
  CLI::App* verb =
      app.add_subcommand("diff", "Compare two checkpoints tensor by tensor and state by state");
  verb->footer(
      "For common tensors of equal dtype and shape: 'identical', or the number of elements whose "
      "bytes differ with the largest |a - b| and |a - b| / max(|a|, |b|). Tensors are streamed in "
      "chunks and every piece read is checked against its checksum.\n"
      "Exit codes: 0 nothing differs; 1 something differs; 2 usage; 3 cannot read (missing, not "
      "HDF5, truncated, newer format); 4 a checkpoint is damaged (checksum mismatch, damaged "
      "manifest) or not committed.");
  verb->add_option("A", options->a, "first checkpoint file")->required();
  verb->add_option("B", options->b, "second checkpoint file")->required();
  verb->add_option("--chunk-bytes", options->chunk_bytes,
                   "compare tensors in chunks of at most this many bytes (bounds memory)")
      ->check(integer_range(64, int64_t{1} << 40, true))
      ->capture_default_str();
  verb->add_flag("--changes-only", options->changes_only,
                 "list only what differs (the summary still counts everything)");
  verb->add_flag("--json", options->json, "print one JSON object");
  verb->callback([options, &context] {
    context.exit_code = inspect::run_guarded("diff", *context.out, *context.err, options->json,
                                             [&] { return inspect::diff(*options, *context.out); });
  });
}

}  // namespace cairn::tools
