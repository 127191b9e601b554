// SPDX-License-Identifier: Apache-2.0
#pragma once
// MPI_COMM_WORLD's rank and size for the tensor tests, which need no cairn Session.
#include <mpi.h>

namespace cairn::tensor_tests {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

}  // namespace cairn::tensor_tests
