// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers shared by the MPI tests: a per-test scratch directory agreed by all ranks, and
// deterministic tensor values derived from (variable id, global element index).
#include <mpi.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cairn/core/error.hpp"
#include "cairn/tensor/variable.hpp"

namespace cairn::testing {

/// The session every test of a program shares (over MPI_COMM_WORLD), created on first use.
Session& session();
/// Collective over the shared session. Elements of `v` that differ from the test values, all ranks.
int64_t global_mismatches(const Variable& v, int64_t id);

/// Collective over MPI_COMM_WORLD. A fresh empty directory for the calling test, same on all ranks.
std::string scratch_dir();

/// The value element `index` (row-major, global) of variable `id` has in the tests.
double test_value(int64_t id, int64_t index);

/// Local. Fills this rank's boxes of `v` with test_value(id, global index).
void fill(Variable& v, int64_t id);
/// Local. Zeros this rank's boxes of `v`.
void zero(Variable& v);
/// Local. Number of local elements of `v` that differ from test_value(id, ...).
int64_t count_mismatches(const Variable& v, int64_t id);

/// Local. Row-major linear index of `coord` in `shape`.
int64_t linear_index(const Shape& shape, const Shape& coord);

/// Collective over the shared session. Runs `fn`, expecting a cairn::Error with `code` whose text
/// contains every needle, and the same text on every rank. Every rank reaches the comparison's
/// gather, whatever it found (a rank that returned early would leave the others waiting).
void expect_same_error_everywhere(const std::function<void()>& fn, ErrorCode code,
                                  const std::vector<std::string>& needles);

/// Local. Sets an environment variable for its lifetime (a failed assertion must not leave a test
/// hook set for the tests after it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

/// Collective. Runs `step` with CAIRN_FAULT_THROW set at `phase` on rank `failing`, and expects the
/// agreed error of that rank's foreign exception on every rank (`what`: "save" or "restore").
void expect_one_ranks_fault_everywhere(const std::string& phase, int failing, const char* what,
                                       const std::function<void()>& step);

}  // namespace cairn::testing
