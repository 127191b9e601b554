// SPDX-License-Identifier: Apache-2.0
// make_seeds: writes the seed corpora of the fuzz targets.
//
//   mpirun -n K cairn_fuzz_make_seeds CONTAINER_DIR MANIFEST_DIR [TABLE_DIR]
//
// Saves the model of fuzz_model.hpp on K ranks as CONTAINER_DIR/np<K>.h5 (format 2.0), writes
// truncated copies of it (inside the superblock, the object headers, the data and the end) as
// np<K>-cut<N>.h5, and its header text as MANIFEST_DIR/np<K>-header.json; with TABLE_DIR, also
// the format 2.0 header, table and record seeds of fuzz_table (table_seeds.hpp). scripts/fuzz
// --make-seeds runs it at 1 and 2 ranks. The format-1.1-* seeds were written by cairn 0.1, which
// wrote format 1.1; they stay, since cairn still reads 1.x files.
#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_model.hpp"
#include "table_seeds.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 0;
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: cairn_fuzz_make_seeds CONTAINER_DIR MANIFEST_DIR [TABLE_DIR]\n");
    code = 2;
  } else {
    try {
      const cairn::Session session(MPI_COMM_WORLD, cairn::fuzz::kSessionOptions);
      cairn::fuzz::Model model = cairn::fuzz::make_model(session);
      cairn::fuzz::fill_model(model, session.rank());
      const std::string name = "np" + std::to_string(session.size());
      const std::filesystem::path containers(argv[1]), manifests(argv[2]);
      if (session.rank() == 0) {
        std::filesystem::create_directories(containers);
        std::filesystem::create_directories(manifests);
      }
      MPI_Barrier(MPI_COMM_WORLD);
      const std::string path = (containers / (name + ".h5")).string();
      cairn::Checkpoint(session, {{"net", model.root}}).write(path);
      if (session.rank() == 0 && argc == 4) {
        const std::filesystem::path tables(argv[3]);
        std::filesystem::create_directories(tables);
        for (const auto& [file, bytes] : cairn::fuzz::table_seeds())
          std::ofstream(tables / file, std::ios::binary) << bytes;
      }
      if (session.rank() == 0) {
        std::ofstream(manifests / (name + "-header.json"))
            << cairn::CheckpointReader(path).manifest_json();
        const auto size = static_cast<int64_t>(std::filesystem::file_size(path));
        for (int64_t cut : {int64_t{40}, int64_t{700}, size / 2, size - 64}) {
          const auto copy = containers / (name + "-cut" + std::to_string(cut) + ".h5");
          std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing);
          std::filesystem::resize_file(copy, static_cast<std::uintmax_t>(cut));
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "make_seeds: %s\n", e.what());
      code = 1;
    }
  }
  MPI_Finalize();
  return code;
}
