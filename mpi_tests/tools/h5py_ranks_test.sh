#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Python readers against the current writer at 1 to 4 ranks: the golden model saved by
# `cairn_make_golden --any-ranks` (uneven shards, ranks owning nothing), read by docs/format.md's
# example code (golden_h5py.py, which also damages copies) and by the interop reader
# (h5py_read.py), every value and every checksum checked. The committed golden files cover 2 ranks
# only; this keeps the example true for other rank counts of the format being written.
#
#   h5py_ranks_test.sh MAKE_GOLDEN WITH_H5PY_SH GOLDEN_H5PY_PY H5PY_READ_PY FORMAT_MD
#   (env: MPIEXEC, CAIRN_TEST_DIR)
set -euo pipefail
usage="usage: h5py_ranks_test.sh MAKE_GOLDEN WITH_H5PY_SH GOLDEN_H5PY_PY H5PY_READ_PY FORMAT_MD"
make_golden="${1:?$usage}" with_h5py="${2:?$usage}" golden_h5py="${3:?$usage}"
h5py_read="${4:?$usage}" format_md="${5:?$usage}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

failed=0
# run NAME CMD...: CMD under a timeout, its output in NAME.log, shown on failure.
run() {
  local name="$1" rc=0
  shift
  timeout -k 10 120 "$@" >"$CAIRN_TEST_DIR/$name.log" 2>&1 || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    echo "PASS $name: $(tail -n 1 "$CAIRN_TEST_DIR/$name.log")"
    return 0
  fi
  echo "FAIL $name (exit $rc)"
  sed 's/^/    | /' "$CAIRN_TEST_DIR/$name.log"
  failed=$((failed + 1))
  return 1
}

for n in 1 2 3 4; do
  dir="$CAIRN_TEST_DIR/np$n"
  mkdir -p "$dir"
  run "save_np$n" "$MPIEXEC" -n "$n" --oversubscribe "$make_golden" "$dir" --any-ranks || continue
  run "example_np$n" bash "$with_h5py" "$golden_h5py" "$format_md" "$dir" || true
  run "interop_np$n" bash "$with_h5py" "$h5py_read" "$dir/ckpt-1.h5" "$dir/ckpt-2.h5" \
    --writer golden --expected "$dir/expected.json" --world-size "$n" --require-checksums || true
done

if [[ "$failed" -ne 0 ]]; then
  echo "h5py_ranks: $failed step(s) failed"
  exit 1
fi
echo "h5py_ranks: all checks passed"
