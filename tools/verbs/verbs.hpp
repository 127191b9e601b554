// SPDX-License-Identifier: Apache-2.0
#pragma once
// The verbs of the `cairn` tool. Each adds its subcommand to the app; when the subcommand is
// given, its callback runs the library function (cairn/inspect/) and stores the exit code.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace cairn::tools {

struct VerbContext {
  int exit_code = 0;
  /// Where results and errors go: std::cout / std::cerr, or nowhere on ranks other than 0 of an
  /// mpirun launch (only rank 0 of a launch prints).
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

/// An option check for integers in [low, high] (high = INT64_MAX: no upper bound) whose message
/// gives the range as a person writes it ("an integer from 64 B to 1 TiB"), not CLI11's default
/// (the 309 digits of the largest double).
CLI::Validator integer_range(int64_t low, int64_t high, bool bytes = false);

/// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx).
bool launched_by_mpi();
/// This process's rank in its launch (0 when not launched by MPI).
int launch_rank();

void add_info(CLI::App& app, VerbContext& context);
void add_ls(CLI::App& app, VerbContext& context);
void add_tree(CLI::App& app, VerbContext& context);
void add_verify(CLI::App& app, VerbContext& context);
void add_diff(CLI::App& app, VerbContext& context);
void add_cat(CLI::App& app, VerbContext& context);
void add_latest(CLI::App& app, VerbContext& context);
void add_list(CLI::App& app, VerbContext& context);
void add_export(CLI::App& app, VerbContext& context);

}  // namespace cairn::tools
