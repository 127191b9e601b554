#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs cairn into a scratch prefix and checks the package as a consumer sees it:
# - the exported CMake target carries no OpenMP and no libmpi_cxx;
# - `pkg-config --modversion cairn` answers the project version from the installed tree;
# - a consumer built with find_package(cairn), and one built with plain g++ and pkg-config flags,
#   save and restore on 2 ranks, with the headers' and the library's versions equal;
# - at the default log level rank 0 prints one line per save and per restore with path, bytes and
#   GB/s; with CAIRN_LOG=quiet the job's stderr is empty.
#
#   find_package_test.sh BUILD_DIR CONSUMER_SOURCE_DIR VERSION   (env: MPIEXEC, CAIRN_TEST_DIR)
set -euo pipefail
build_dir=$1
source_dir=$2
version=$3
scratch=${CAIRN_TEST_DIR:?}
unset CAIRN_LOG CAIRN_TRACE CAIRN_FAULT_INJECT
fail() { echo "find_package_test: FAILED: $*" >&2; exit 1; }
rm -rf "$scratch"
mkdir -p "$scratch/data" "$scratch/pc-data" "$scratch/quiet-data"
prefix=$scratch/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null

targets=$(ls "$prefix"/lib*/cmake/cairn/cairnTargets.cmake)
grep -n "INTERFACE_LINK_LIBRARIES" "$targets"
if grep -Eiq "openmp|fopenmp|gomp" "$targets"; then fail "cairnTargets.cmake mentions OpenMP"; fi
if grep -Eq "MPI_CXX|mpi_cxx" "$targets"; then fail "cairnTargets.cmake links the MPI C++ bindings"; fi
grep -q "cxx_std_20" "$targets" || fail "cairnTargets.cmake does not require C++20 of consumers"

pcdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/cairn.pc)")
got=$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion cairn)
[[ $got == "$version" ]] || fail "pkg-config --modversion cairn says '$got', expected '$version'"
flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs cairn)
echo "pkg-config --cflags --libs cairn: $flags"
if grep -Eq -- "-fopenmp|gomp|mpi_cxx" <<<"$flags"; then fail "pkg-config flags carry OpenMP or libmpi_cxx"; fi

cmake -S "$source_dir" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
if ldd "$scratch/consumer/consumer" | grep -q "libmpi_cxx"; then fail "the consumer links libmpi_cxx"; fi
"${MPIEXEC:?}" -n 2 --oversubscribe "$scratch/consumer/consumer" "$scratch/data" 2>"$scratch/stderr"
test -f "$scratch/data/ckpt-1.h5" || fail "no checkpoint written"
cat "$scratch/stderr"
[[ $(grep -c "^cairn: saved '$scratch/data/ckpt-1.h5' (counter 1, 2 ranks): [0-9]* bytes in [0-9.]* s, [0-9.-]* GB/s, level: shared file$" "$scratch/stderr") == 1 ]] ||
  fail "expected one save line on stderr"
[[ $(grep -c "^cairn: restored '$scratch/data/ckpt-1.h5' (.*): .* [0-9]* bytes in [0-9.]* s, [0-9.-]* GB/s" "$scratch/stderr") == 1 ]] ||
  fail "expected one restore line on stderr"
[[ $(grep -c "^cairn" "$scratch/stderr") == 2 ]] || fail "expected exactly two cairn lines on stderr"

CAIRN_LOG=quiet "$MPIEXEC" -n 2 --oversubscribe "$scratch/consumer/consumer" "$scratch/quiet-data" 2>"$scratch/quiet-stderr"
test -f "$scratch/quiet-data/ckpt-1.h5" || fail "no checkpoint written under CAIRN_LOG=quiet"
[[ ! -s "$scratch/quiet-stderr" ]] || { cat "$scratch/quiet-stderr"; fail "CAIRN_LOG=quiet: stderr is not empty"; }

# pkg-config alone, with the plain compiler (no MPI wrapper): the .pc brings MPI's flags too.
g++ -std=c++20 -o "$scratch/pc-consumer" "$source_dir/main.cpp" $flags -Wl,-rpath,"$(dirname "$pcdir")"
"$MPIEXEC" -n 2 --oversubscribe "$scratch/pc-consumer" "$scratch/pc-data" 2>/dev/null
test -f "$scratch/pc-data/ckpt-1.h5" || fail "the pkg-config consumer wrote no checkpoint"
rm -rf "$prefix"
