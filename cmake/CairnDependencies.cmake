# SPDX-License-Identifier: Apache-2.0
# All third-party dependencies come from Debian packages installed by scripts/setup.
# MPI: the C API only (cairn::cairn defines OMPI_SKIP_MPICXX, so nothing needs libmpi_cxx).
find_package(MPI REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS CXX)  # private to the library: no public header uses it
find_package(Boost 1.74 REQUIRED COMPONENTS serialization)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# On x86-64, cairn's checksums (XXH3-64) also get an AVX2 build of xxhash's inline code, used when
# the CPU has AVX2 (same values; ~10% less CPU per W2 restore here). Not the AVX-512 variants of
# Debian's libxxhash (XXH3_64bits_dispatch): measured slower in cairn's restores on this machine.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-mavx2 CAIRN_HAVE_MAVX2)
endif()

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 1.10.7 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "cairn needs a parallel (MPI) build of HDF5, but the HDF5 found at '${HDF5_INCLUDE_DIRS}' is serial. "
    "On Debian install libhdf5-openmpi-dev (scripts/setup does this).")
endif()
if(NOT TARGET cairn_hdf5)
  # FindHDF5 in CMake 3.25 gives variables, not a stable imported target for every layout; wrap them.
  add_library(cairn_hdf5 INTERFACE)
  target_include_directories(cairn_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(cairn_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
  target_compile_definitions(cairn_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
endif()
