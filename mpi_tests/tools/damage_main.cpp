// SPDX-License-Identifier: Apache-2.0
// cairn_test_damage: damages a checkpoint on purpose for the CLI tests (see damage.hpp).
//
//   cairn_test_damage flip-tensor FILE KEY [ELEMENT]   flip a byte of a tensor element
//   cairn_test_damage flip-state FILE KEY RANK          flip the first byte of a state value
//   cairn_test_damage flip-manifest FILE                flip a byte of the header (1.x: manifest)
//   cairn_test_damage flip-table FILE                   flip a byte of the table (format 2.x)
//   cairn_test_damage flip-record FILE RANK             flip a byte of a rank's record (2.x)
//   cairn_test_damage truncate FILE BYTES               cut the file
//   cairn_test_damage uncommit FILE                     delete the commit mark
//   cairn_test_damage set-version FILE VERSION          rewrite format_version and commit mark
//   cairn_test_damage unlink FILE DATASET               rename a tensor's dataset away
#include <hdf5.h>

#include <cstdio>
#include <exception>
#include <string>

#include "damage.hpp"

int main(int argc, char** argv) {
  using namespace cairn::testing;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  try {
    const std::string verb = argc > 1 ? argv[1] : "";
    if (verb == "flip-tensor" && (argc == 4 || argc == 5))
      flip_byte(argv[2],
                tensor_element_offset(argv[2], argv[3], argc == 5 ? std::stoll(argv[4]) : 0));
    else if (verb == "flip-state" && argc == 5)
      flip_byte(argv[2], state_blob_offset(argv[2], argv[3], std::stoi(argv[4])));
    else if (verb == "flip-manifest" && argc == 3)
      flip_byte(argv[2], manifest_offset(argv[2]) + 10);
    else if (verb == "flip-table" && argc == 3)
      flip_byte(argv[2], table_offset(argv[2]) + 20);
    else if (verb == "flip-record" && argc == 4)
      flip_byte(argv[2], record_offset(argv[2], std::stoi(argv[3])) + 44);
    else if (verb == "truncate" && argc == 4)
      truncate_file(argv[2], std::stoll(argv[3]));
    else if (verb == "uncommit" && argc == 3)
      remove_commit_mark(argv[2]);
    else if (verb == "set-version" && argc == 4)
      set_format_version(argv[2], argv[3]);
    else if (verb == "unlink" && argc == 4)
      unlink_dataset(argv[2], argv[3]);
    else {
      std::fprintf(stderr, "usage: cairn_test_damage VERB FILE ... (see damage_main.cpp)\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
