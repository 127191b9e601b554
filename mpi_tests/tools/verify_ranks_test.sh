#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cairn verify` gives the same verdict (the same JSON, apart from the rank count) without mpirun
# and under mpirun at 1, 2, 3 and 4 ranks, for a sound checkpoint, a damaged one, and a directory;
# every rank of a run exits with the same code.
#
#   verify_ranks_test.sh CAIRN MAKE_GOLDEN DAMAGE   (env: MPIEXEC, CAIRN_TEST_DIR)
set -uo pipefail

CAIRN="${1:?usage: verify_ranks_test.sh CAIRN MAKE_GOLDEN DAMAGE}"
MAKE_GOLDEN="${2:?}"
DAMAGE="${3:?}"
: "${MPIEXEC:?}" "${CAIRN_TEST_DIR:?}"
T="$CAIRN_TEST_DIR"
rm -rf "$T"
mkdir -p "$T"
"$MPIEXEC" -n 2 --oversubscribe "$MAKE_GOLDEN" "$T/run" >"$T/make.log" 2>&1 || {
  echo "FAIL: make_golden"; cat "$T/make.log"; exit 1; }
cp "$T/run/ckpt-2.h5" "$T/damaged.h5"
# Damage in pieces that different ranks check: early, middle and late in the manifest.
"$DAMAGE" flip-tensor "$T/damaged.h5" model/embedding/.ATTRIBUTES/VARIABLE_VALUE 23
"$DAMAGE" flip-tensor "$T/damaged.h5" model/ints32/.ATTRIBUTES/VARIABLE_VALUE 19
"$DAMAGE" flip-tensor "$T/damaged.h5" model/table/.ATTRIBUTES/VARIABLE_VALUE 15
"$DAMAGE" flip-state "$T/damaged.h5" data/.ATTRIBUTES/STATE 1
cp "$T/damaged.h5" "$T/run/ckpt-3.h5"

FAILED=0
for target in "$T/run/ckpt-1.h5" "$T/damaged.h5" "$T/run"; do
  name=$(basename "$target")
  "$CAIRN" verify --json "$target" >"$T/$name.serial.json" 2>"$T/$name.serial.err"
  reference_rc=$?
  grep -v '"ranks":' "$T/$name.serial.json" >"$T/$name.serial.cmp"
  for np in 1 2 3 4; do
    rc=0
    "$MPIEXEC" -n "$np" --oversubscribe "$CAIRN" verify --json "$target" >"$T/$name.np$np.json" 2>"$T/$name.np$np.err" || rc=$?
    grep -v '"ranks":' "$T/$name.np$np.json" >"$T/$name.np$np.cmp"
    if [[ "$rc" -ne "$reference_rc" ]] || ! diff -u "$T/$name.serial.cmp" "$T/$name.np$np.cmp"; then
      FAILED=$((FAILED + 1))
      echo "FAIL: $name at $np ranks: exit $rc (serial: $reference_rc), verdicts above differ"
    elif ! grep -q "\"ranks\": $np" "$T/$name.np$np.json"; then
      FAILED=$((FAILED + 1))
      echo "FAIL: $name at $np ranks did not run on $np ranks"
    else
      echo "ok   $name: exit $rc at $np ranks, same verdict as without mpirun"
    fi
  done
done
# Every rank, not only the one that prints, ends with the verdict's exit code (1: damaged; the
# uncommitted copy is damaged before any piece is read, at the commit mark).
cp "$T/damaged.h5" "$T/uncommitted.h5"
"$DAMAGE" uncommit "$T/uncommitted.h5"
for target in "$T/damaged.h5" "$T/run" "$T/uncommitted.h5"; do
  name=$(basename "$target")
  "$MPIEXEC" -n 3 --oversubscribe bash -c '"$0" verify --json "$1" 2>/dev/null; echo "exit $?"' \
    "$CAIRN" "$target" >"$T/$name.ranks" 2>"$T/$name.ranks.err"
  codes=$(grep '^exit ' "$T/$name.ranks" | sort | uniq -c)
  if [[ "$(grep -c '^exit ' "$T/$name.ranks")" -ne 3 ]] || [[ "$codes" != "      3 exit 1" ]] ||
    [[ "$(grep -c '"ranks": 3' "$T/$name.ranks")" -ne 1 ]]; then
    FAILED=$((FAILED + 1))
    echo "FAIL: $name at 3 ranks: not one verify on 3 ranks, or exit codes per rank differ or are not 1:"
    grep '^exit ' "$T/$name.ranks"
  else
    echo "ok   $name: every one of 3 ranks exits 1"
  fi
done
# The verdicts themselves: sound, then the four problems named, then the directory damaged.
grep -q '"verdict": "ok"' "$T/ckpt-1.h5.serial.json" || { echo "FAIL: sound file not ok"; FAILED=$((FAILED + 1)); }
grep -q '"problems_total": 4' "$T/damaged.h5.serial.json" || { echo "FAIL: want 4 problems"; FAILED=$((FAILED + 1)); }
for key in model/embedding model/ints32 model/table data/.ATTRIBUTES/STATE; do
  grep -q "\"key\": \"$key" "$T/damaged.h5.serial.json" || { echo "FAIL: $key not named"; FAILED=$((FAILED + 1)); }
done
grep -q '"checkpoint": "ckpt-3.h5"' "$T/run.serial.json" || { echo "FAIL: ckpt-3.h5 not named"; FAILED=$((FAILED + 1)); }
[[ "$FAILED" -eq 0 ]] && echo "verify: same verdict at every rank count"
[[ "$FAILED" -eq 0 ]]
