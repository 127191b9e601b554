#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Writes the golden checkpoints of a format version: small checkpoints saved on 2 ranks by the
# current cairn, with a JSON of the values they hold. They are committed to the repository, and
# mpi_tests/tools/golden_test.cpp restores them with the current library on 1 and 3 ranks, so a
# change that can no longer read old checkpoints fails CI.
#
#   tests/golden/make_golden.sh BUILD_DIR [OUT_DIR]
#
# BUILD_DIR is a configured build tree (scripts/build); the generator cairn_make_golden is built
# there. OUT_DIR defaults to tests/golden/format-<major>.<minor> of the format the library writes.
#
# What the checkpoints hold (tests/golden/golden_model.hpp): all 13 dtypes; tensors packed and in
# their own dataset (the pack threshold is 64 bytes and pieces are at most 32 bytes, so tiny
# tensors use every storage path and multi-piece boxes); block, grid, explicit and replicated
# layouts over 2 ranks; a scalar and an empty tensor; a shared object and a cycle; Adam with slot
# variables m and v; per-rank and global opaque state. ckpt-1.h5 and ckpt-2.h5 are two saves
# (steps 1 and 2) with different values; cairn-state.json names ckpt-2.h5 as the latest.
#
# Never regenerate the files of a released format to make the golden test pass: that test failing
# means old checkpoints no longer restore. Write a new directory for a new format version instead,
# and keep the old ones.
set -euo pipefail

build="${1:?usage: make_golden.sh BUILD_DIR [OUT_DIR]}"
here=$(cd "$(dirname "$0")" && pwd)
cmake --build "$build" --target cairn_make_golden cairn_tool >/dev/null
generator=$(find "$build" -name cairn_make_golden -type f -perm -u+x | head -n 1)
cairn=$(find "$build" -path '*/tools/cairn' -type f -perm -u+x | head -n 1)
[[ -x "$generator" && -x "$cairn" ]] || { echo "make_golden: generator or cairn not built" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"${MPIEXEC:-mpiexec}" -n 2 --oversubscribe "$generator" "$work"

version=$(sed -n 's/.*"format_version": *"\([0-9.]*\)".*/\1/p' "$work/expected.json" | head -n 1)
out="${2:-$here/format-$version}"

# Every file must verify and stay small (the repository keeps them).
"$cairn" verify "$work"
for f in "$work"/ckpt-*.h5; do
  size=$(stat -c %s "$f")
  if (( size >= 100 * 1024 )); then
    echo "make_golden: $f is $size bytes (limit 100 KiB)" >&2
    exit 1
  fi
done

mkdir -p "$out"
cp "$work"/ckpt-1.h5 "$work"/ckpt-2.h5 "$work"/cairn-state.json "$work"/expected.json "$out"/
echo "make_golden: wrote $out"
ls -l "$out"
