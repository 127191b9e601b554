#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cairn as a subproject (FetchContent of the source tree, which is add_subdirectory): tests, tools,
# bench and examples default OFF, only the library and the consumer are built, and the consumer
# saves and restores on 2 ranks.
#
#   subproject_test.sh CONSUMER_SOURCE_DIR CAIRN_SOURCE_DIR   (env: MPIEXEC, CAIRN_TEST_DIR)
set -euo pipefail
consumer_dir=$1
cairn_dir=$2
scratch=${CAIRN_TEST_DIR:?}
unset CAIRN_LOG CAIRN_TRACE CAIRN_FAULT_INJECT
fail() { echo "subproject_test: FAILED: $*" >&2; exit 1; }
rm -rf "$scratch"
mkdir -p "$scratch/data"
# No build type (unoptimized) and a unity build: the quickest compile of the library (~45 s instead
# of ~200 s on 2 cores), which this test builds from scratch.
cmake -S "$consumer_dir" -B "$scratch/build" -DCAIRN_SOURCE_DIR="$cairn_dir" -DCMAKE_UNITY_BUILD=ON >/dev/null
for option in TESTS TOOLS BENCH EXAMPLES; do
  grep -q "^CAIRN_BUILD_$option:BOOL=OFF$" "$scratch/build/CMakeCache.txt" ||
    fail "CAIRN_BUILD_$option is not OFF in a subproject build"
done
targets=$(cmake --build "$scratch/build" --target help)
for target in cairn_tool cairn_bench quickstart cairn_test_support; do
  if grep -qw "$target" <<<"$targets"; then fail "a subproject build defines target $target"; fi
done
cmake --build "$scratch/build" --target consumer -j 2 >/dev/null
"${MPIEXEC:?}" -n 2 --oversubscribe "$scratch/build/consumer" "$scratch/data"
test -f "$scratch/data/ckpt-1.h5" || fail "no checkpoint written"
rm -rf "$scratch/build"
