#!/usr/bin/env bash
# Installs cairn into a scratch prefix, builds a consumer project with find_package(cairn) and
# runs it on 2 ranks.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=${CAIRN_TEST_DIR:?}
rm -rf "$scratch"
mkdir -p "$scratch/data"
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"${MPIEXEC:?}" -n 2 --oversubscribe "$scratch/consumer/consumer" "$scratch/data"
test -f "$scratch/data/ckpt-1.h5"
