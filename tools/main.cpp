// SPDX-License-Identifier: Apache-2.0
// cairn: inspect, verify and compare cairn checkpoints. Each verb lives in tools/verbs/ and is a
// thin layer over a library function in cairn/inspect/.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

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

namespace {

// Levenshtein distance, for suggesting the verb a typo meant.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "unknown verb 'lst'; did you mean 'ls' or 'list'? Verbs: ..." (suggestions only when the nearest
// verbs are close: at most 2 edits, or 1 for a word of 3 letters or fewer).
std::string unknown_verb_message(const std::string& word, const std::vector<std::string>& verbs) {
  std::size_t best = std::string::npos;
  for (const std::string& v : verbs) best = std::min(best, edit_distance(word, v));
  std::vector<std::string> nearest;
  if (best <= std::max<std::size_t>(1, std::min<std::size_t>(2, word.size() / 2)))
    for (const std::string& v : verbs)
      if (edit_distance(word, v) == best) nearest.push_back("'" + v + "'");
  std::string message = "unknown verb '" + word + "'";
  for (std::size_t i = 0; i < nearest.size(); ++i)
    message += (i == 0 ? "; did you mean " : i + 1 == nearest.size() ? " or " : ", ") + nearest[i];
  message += nearest.empty() ? "." : "?";
  std::string list;
  for (const std::string& v : verbs) list += (list.empty() ? "" : ", ") + v;
  return message + " Verbs: " + list + " (cairn --help).";
}

}  // namespace

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
      "Exit codes: 0 ok, 1 verification failed (damage, no commit mark; diff: the checkpoints "
      "differ), 2 usage error, 3 cannot read (missing file, not HDF5 or truncated, newer format, "
      "I/O), 4 diff only: a checkpoint is damaged or not committed.\n"
      "With --json, standard output holds one JSON object, on failure too: {\"error\": {\"verb\", "
      "\"code\", \"exit_code\", \"message\", \"path\", ...}}; the message also goes to standard "
      "error.\n"
      "Run 'cairn VERB --help' for a verb's options. Documentation: docs/cli.md.");
  add_info(app, context);
  add_ls(app, context);
  add_tree(app, context);
  add_verify(app, context);
  add_diff(app, context);
  add_cat(app, context);
  add_latest(app, context);
  add_list(app, context);
  add_export(app, context);
  const bool json = std::any_of(argv + 1, argv + argc,
                                [](const char* a) { return std::strcmp(a, "--json") == 0; });
  auto usage_error = [&](const std::string& verb, const std::string& message) {
    if (json)
      *context.out << cairn::inspect::error_json(verb, cairn::ErrorCode::kInvalidArgument,
                                                 cairn::inspect::kExitUsage, message);
    return cairn::inspect::kExitUsage;
  };
  // The first word is the verb (top-level options start with '-'). CLI11 would only say that a
  // subcommand is required.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> verbs;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      verbs.push_back(sub->get_name());
    if (std::find(verbs.begin(), verbs.end(), argv[1]) == verbs.end()) {
      const std::string message = unknown_verb_message(argv[1], verbs);
      *context.err << "cairn: " << message << '\n';
      return usage_error("", message);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end parsing with exit code 0; every other parse error is a usage error.
    const int code = app.exit(e, *context.out, *context.err);
    if (code == 0) return cairn::inspect::kExitOk;
    return usage_error(argc > 1 && argv[1][0] != '-' ? argv[1] : "", e.what());
  }
  context.out->flush();
  return context.exit_code;
}
