// Saves and restores one sharded variable through an installed cairn.
#include <mpi.h>

#include <cairn/cairn.hpp>
#include <cstdio>

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
    if (session.rank() == 0) std::printf("consumer: %s %s\n", path.c_str(), rc ? "FAILED" : "ok");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
