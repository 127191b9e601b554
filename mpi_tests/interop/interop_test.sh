#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Interop: checkpoints written by cairn on 3 ranks, read back by Python with h5py and numpy only
# (h5py_read.py, no cairn), every value and every checksum checked; then corrupted copies (tensor
# data, packed data, a record, the table) must be rejected by the same reader, to show that it can
# fail.
#
#   interop_test.sh H5PY_READ_PY CRASH_SAVER [QUICKSTART]   (env: MPIEXEC, CAIRN_TEST_DIR)
#
# quickstart (examples/) writes small tensors, all packed, plus per-rank and global state;
# crash_saver (mpi_tests/fault/) writes a 1.2 MB block-sharded tensor as an HDF5 dataset.
set -euo pipefail

READER="${1:?usage: interop_test.sh H5PY_READ_PY CRASH_SAVER [QUICKSTART]}"
CRASH_SAVER="${2:?usage: interop_test.sh H5PY_READ_PY CRASH_SAVER [QUICKSTART]}"
QUICKSTART="${3:-}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
readonly NP=3 STEP_TIMEOUT=60

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

# The python3 first on PATH may lack h5py (pyenv); Debian's /usr/bin/python3 has python3-h5py.
PYTHON=""
for candidate in "${CAIRN_PYTHON:-}" python3 /usr/bin/python3; do
  if [[ -n "$candidate" ]] && "$candidate" -c 'import h5py, numpy' >/dev/null 2>&1; then
    PYTHON="$candidate"
    break
  fi
done
if [[ -z "$PYTHON" ]]; then
  echo "FAIL: no python3 with h5py and numpy (scripts/setup installs python3-h5py, python3-numpy)"
  exit 1
fi
echo "interop: reader $READER with $PYTHON; $MPIEXEC -n $NP"

FAILED=0
pass() { echo "PASS $1"; }
fail() {
  echo "FAIL $1"
  FAILED=$((FAILED + 1))
}

# step NAME CMD...: runs CMD under a timeout, output to NAME.log; prints the log on failure.
step() {
  local name="$1"
  shift
  local log="$CAIRN_TEST_DIR/$name.log" rc=0
  timeout -k 10 "$STEP_TIMEOUT" "$@" >"$log" 2>&1 || rc=$?
  if [[ "$rc" -eq 0 ]]; then return 0; fi
  fail "$name (exit $rc)"
  sed 's/^/    | /' "$log"
  return 1
}

read_ok() {  # read_ok NAME FILE READER-ARGS...: the reader must accept FILE.
  local name="$1" file="$2"
  shift 2
  if step "$name" "$PYTHON" "$READER" "$file" --world-size "$NP" --require-checksums "$@"; then
    cat "$CAIRN_TEST_DIR/$name.log"
    pass "$name"
  fi
}

read_corrupt() {  # read_corrupt NAME FILE PATTERN READER-ARGS...: the reader must reject FILE.
  local name="$1" file="$2" pattern="$3" rc=0
  shift 3
  local log="$CAIRN_TEST_DIR/$name.log"
  timeout -k 10 "$STEP_TIMEOUT" "$PYTHON" "$READER" "$file" --world-size "$NP" \
    --require-checksums "$@" >"$log" 2>&1 || rc=$?
  if [[ "$rc" -eq 1 ]] && grep -q -- "$pattern" "$log"; then
    pass "$name: rejected ($(grep -c 'MISMATCH' "$log") mismatches reported, incl. '$pattern')"
  else
    fail "$name: expected exit 1 and '$pattern', got exit $rc"
    sed 's/^/    | /' "$log"
  fi
}

# 1. quickstart: every tensor packed; per-rank and global state.
if [[ -n "$QUICKSTART" ]]; then
  mkdir -p "$CAIRN_TEST_DIR/quickstart"
  if step quickstart_save "$MPIEXEC" -n "$NP" --oversubscribe "$QUICKSTART" save \
    "$CAIRN_TEST_DIR/quickstart"; then
    read_ok h5py_quickstart "$CAIRN_TEST_DIR/quickstart/ckpt-1.h5" --writer quickstart
  fi
else
  echo "SKIP quickstart: examples are not built (CAIRN_BUILD_EXAMPLES=OFF)"
fi

# 2. crash_saver: a tensor stored as its own HDF5 dataset, written as hyperslabs by every rank.
saver_dir="$CAIRN_TEST_DIR/saver"
mkdir -p "$saver_dir"
if step crash_saver_save "$MPIEXEC" -n "$NP" --oversubscribe "$CRASH_SAVER" save \
  "$saver_dir" 1; then
  ckpt="$saver_dir/ckpt-1.h5"
  read_ok h5py_dataset "$ckpt" --writer crash_saver --step 1

  # 3. The reader must notice corruption: one element of the dataset, one byte of packed data,
  # a piece checksum in rank 1's record, a byte of the table's directory.
  for what in dataset packed record table; do cp "$ckpt" "$CAIRN_TEST_DIR/corrupt-$what.h5"; done
  if step corrupt_files "$PYTHON" - "$CAIRN_TEST_DIR" <<'PY'; then
import sys, h5py
d = sys.argv[1]
with h5py.File(f"{d}/corrupt-dataset.h5", "r+") as f:
    w = f["/tensors/weights/.ATTRIBUTES/VARIABLE_VALUE"]
    w[4500, 7] = w[4500, 7] + 1.0
with h5py.File(f"{d}/corrupt-packed.h5", "r+") as f:
    p = f["/cairn/packed"]
    p[0] = p[0] ^ 0x40
with h5py.File(f"{d}/corrupt-record.h5", "r+") as f:
    r, at = f["/cairn/records"], int(f["/cairn/record_offsets"][1]) + 40 + 8
    r[at] = r[at] ^ 0x40
with h5py.File(f"{d}/corrupt-table.h5", "r+") as f:
    t = f["/cairn/table"]
    t[20] = t[20] ^ 0x40
PY
    read_corrupt h5py_rejects_changed_dataset "$CAIRN_TEST_DIR/corrupt-dataset.h5" \
      "checksum mismatch in piece" --writer crash_saver --step 1
    read_corrupt h5py_rejects_changed_packed "$CAIRN_TEST_DIR/corrupt-packed.h5" \
      "checksum mismatch" --writer crash_saver --step 1
    read_corrupt h5py_rejects_changed_record "$CAIRN_TEST_DIR/corrupt-record.h5" \
      "record of rank 1: body checksum mismatch" --writer crash_saver --step 1
    read_corrupt h5py_rejects_changed_table "$CAIRN_TEST_DIR/corrupt-table.h5" \
      "table checksum" --writer crash_saver --step 1
  fi
fi

if [[ "$FAILED" -ne 0 ]]; then
  echo "interop: $FAILED check(s) failed"
  exit 1
fi
echo "interop: all checks passed"
