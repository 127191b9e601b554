# SPDX-License-Identifier: Apache-2.0
# Writes and installs cairn.pc. A consumer compiles against cairn's headers, which include <mpi.h>
# and Boost.Serialization's headers, and links libcairn; HDF5, xxhash and OpenMP stay inside
# libcairn.so (it is a shared library only), so they appear nowhere here.
set(CAIRN_PC_REQUIRES "")
set(CAIRN_PC_CFLAGS "")
set(CAIRN_PC_LIBS "")
# MPI through its own pkg-config module where it has one (Debian: mpi-c, an alternative pointing
# at the MPI in use), else through the flags CMake found.
pkg_search_module(CAIRN_PC_MPI QUIET mpi-c ompi-c mpich)
if(CAIRN_PC_MPI_FOUND)
  set(CAIRN_PC_REQUIRES ${CAIRN_PC_MPI_MODULE_NAME})
else()
  foreach(dir IN LISTS MPI_C_INCLUDE_DIRS)
    string(APPEND CAIRN_PC_CFLAGS " -I${dir}")
  endforeach()
  foreach(lib IN LISTS MPI_C_LIBRARIES)
    string(APPEND CAIRN_PC_LIBS " ${lib}")
  endforeach()
endif()
# Boost.Serialization has no pkg-config module.
foreach(dir IN LISTS Boost_INCLUDE_DIRS)
  if(NOT dir STREQUAL "/usr/include")
    string(APPEND CAIRN_PC_CFLAGS " -I${dir}")
  endif()
endforeach()
get_filename_component(boost_lib_dir "${Boost_SERIALIZATION_LIBRARY_RELEASE}" DIRECTORY)
if(boost_lib_dir AND NOT boost_lib_dir MATCHES "^/usr/lib(/${CMAKE_LIBRARY_ARCHITECTURE})?$")
  string(APPEND CAIRN_PC_LIBS " -L${boost_lib_dir}")
endif()
string(APPEND CAIRN_PC_LIBS " -lboost_serialization")
file(RELATIVE_PATH CAIRN_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" CAIRN_PC_TO_PREFIX "${CAIRN_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/cairn.pc.in ${PROJECT_BINARY_DIR}/cairn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cairn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
