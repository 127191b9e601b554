// SPDX-License-Identifier: Apache-2.0
// Saves and restores one sharded variable through an installed cairn, and reports the versions of
// the headers and of the library it runs with.
#include <mpi.h>

#include <cairn/cairn.hpp>
#include <cairn/version.hpp>
#include <cstdio>
#include <string>

// cairn's OpenMP is its own: a consumer that did not ask for OpenMP must not get it.
#ifdef _OPENMP
#error "_OPENMP is defined: cairn leaked -fopenmp into its consumer"
#endif

static_assert(CAIRN_VERSION_MAJOR >= 0 && CAIRN_VERSION_MINOR >= 0 && CAIRN_VERSION_PATCH >= 0);

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  try {
    cairn::Session session(MPI_COMM_WORLD);
    auto v = cairn::Variable::create<float>(session, {10}, cairn::Layout::block(0));
    for (float& x : v->local_all<float>()) x = 3.5f;
    cairn::Checkpoint ckpt(session, {{"v", v}});
    const std::string path = ckpt.save(std::string(argv[1]) + "/ckpt");
    for (float& x : v->local_all<float>()) x = 0;
    ckpt.restore(path).assert_consumed();
    for (float x : v->local_all<float>()) rc |= x != 3.5f;
    if (std::string(cairn::version()) != CAIRN_VERSION_STRING) rc = 1;
    if (session.rank() == 0)
      std::printf("consumer: %s %s (headers %s, library %s)\n", path.c_str(), rc ? "FAILED" : "ok",
                  CAIRN_VERSION_STRING, cairn::version());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
