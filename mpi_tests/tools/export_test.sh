#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cairn export` end to end: checkpoints saved on 3 ranks (uneven shards), 1 and 4 (a rank owning
# nothing) and the committed golden checkpoints of format 1.1 (all 13 dtypes) exported to .safetensors and
# .h5, read back by plain Python (struct + json + numpy) and h5py, every value compared with
# expected.json and the key set with `cairn ls`; --keys; export under mpirun at 1-4 ranks (the
# same bytes); damage and bad arguments leave no output file.
#
#   export_test.sh CAIRN MAKE_GOLDEN DAMAGE GOLDEN_DIR CHECK_PY WITH_H5PY   (env: MPIEXEC, CAIRN_TEST_DIR)
set -uo pipefail

CAIRN="${1:?usage: export_test.sh CAIRN MAKE_GOLDEN DAMAGE GOLDEN_DIR CHECK_PY WITH_H5PY}"
MAKE_GOLDEN="${2:?}"
DAMAGE="${3:?}"
GOLDEN="${4:?}"
CHECK="${5:?}"
WITH_H5PY="${6:?}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
T="$CAIRN_TEST_DIR"
rm -rf "$T"
mkdir -p "$T"
FAILED=0
CHECKS=0

fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
# run CODE CMD...: CMD must exit with CODE.
run() {
  local want="$1"
  shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  CHECKS=$((CHECKS + 1))
  if [[ "$rc" -ne "$want" ]]; then
    fail "'$*' exited $rc (want $want)"
    sed 's/^/    | /' <<<"$out" | head -20
  else
    echo "ok   $want  ${*#"$CAIRN "}"
  fi
}
# check EXPECTED_JSON CKPT OUT [GLOBS...]: the export holds exactly the tensors of `cairn ls` (or
# those whose key matches one of GLOBS, by Python's fnmatch), values equal to expected.json.
check() {
  local expected="$1" ckpt="$2" out="$3"
  shift 3
  CHECKS=$((CHECKS + 1))
  "$CAIRN" ls --json "$ckpt" >"$T/ls.json" || fail "cairn ls --json $ckpt"
  if ! bash "$WITH_H5PY" "$CHECK" "$expected" "$(basename "$ckpt")" "$T/ls.json" "$out" "$@"; then
    fail "export_check $out"
  fi
}

# 1. Saved on 3 ranks.
"$MPIEXEC" -n 3 --oversubscribe "$MAKE_GOLDEN" "$T/run3" --any-ranks >"$T/make.log" 2>&1 || {
  echo "FAIL: make_golden on 3 ranks"; cat "$T/make.log"; exit 1; }
C="$T/run3/ckpt-2.h5"
E="$T/run3/expected.json"
run 0 "$CAIRN" export "$C" "$T/run3.safetensors"
check "$E" "$C" "$T/run3.safetensors"
run 0 "$CAIRN" export "$C" "$T/run3.h5"
check "$E" "$C" "$T/run3.h5"
run 0 "$CAIRN" verify "$C"
# Tiny chunks: every tensor streamed in many reads and writes, the same bytes.
run 0 "$CAIRN" export --chunk-bytes 64 "$C" "$T/small-chunks.safetensors"
CHECKS=$((CHECKS + 1))
cmp -s "$T/run3.safetensors" "$T/small-chunks.safetensors" || fail "--chunk-bytes 64 changed the output"
run 0 "$CAIRN" export --chunk-bytes 64 "$C" "$T/small-chunks.h5"
check "$E" "$C" "$T/small-chunks.h5"

# Saved on 1 and 4 ranks too (on 4, a [3, 3] grid leaves a rank with nothing).
for n in 1 4; do
  "$MPIEXEC" -n "$n" --oversubscribe "$MAKE_GOLDEN" "$T/run$n" --any-ranks >"$T/make$n.log" 2>&1 || {
    echo "FAIL: make_golden on $n ranks"; cat "$T/make$n.log"; exit 1; }
  run 0 "$CAIRN" export "$T/run$n/ckpt-1.h5" "$T/run$n.safetensors"
  check "$T/run$n/expected.json" "$T/run$n/ckpt-1.h5" "$T/run$n.safetensors"
  run 0 "$CAIRN" export "$T/run$n/ckpt-1.h5" "$T/run$n.h5"
  check "$T/run$n/expected.json" "$T/run$n/ckpt-1.h5" "$T/run$n.h5"
done

# 2. Under mpirun at 1-4 ranks: rank 0 writes; the same bytes, every rank exits 0.
for n in 1 2 3 4; do
  run 0 "$MPIEXEC" -n "$n" --oversubscribe "$CAIRN" export "$C" "$T/mpi-$n.safetensors"
  CHECKS=$((CHECKS + 1))
  cmp -s "$T/run3.safetensors" "$T/mpi-$n.safetensors" || fail "export under mpirun -n $n differs"
  run 0 "$MPIEXEC" -n "$n" --oversubscribe "$CAIRN" export "$C" "$T/mpi-$n.h5"
  check "$E" "$C" "$T/mpi-$n.h5"
done

# 3. The golden checkpoints of format 1.1 (written on 2 ranks): all 13 dtypes.
for ckpt in ckpt-1.h5 ckpt-2.h5; do
  for ext in safetensors h5; do
    run 0 "$CAIRN" export "$GOLDEN/$ckpt" "$T/golden-$ckpt.$ext"
    check "$GOLDEN/expected.json" "$GOLDEN/$ckpt" "$T/golden-$ckpt.$ext"
  done
done

# 4. --keys: fnmatch globs ('*' also matches '/'), repeatable.
run 0 "$CAIRN" export "$C" "$T/dense.safetensors" --keys 'model/dense/*' --keys 'model/b?ain/*'
check "$E" "$C" "$T/dense.safetensors" 'model/dense/*' 'model/b?ain/*'
run 0 "$CAIRN" export "$C" "$T/dense.h5" --keys '*/.OPTIMIZER_SLOT/*'
check "$E" "$C" "$T/dense.h5" '*/.OPTIMIZER_SLOT/*'
CHECKS=$((CHECKS + 1))
n=$(python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n,=struct.unpack("<Q",f.read(8)); h=json.loads(f.read(n)); h.pop("__metadata__"); print(len(h))' "$T/dense.safetensors")
[[ "$n" == 7 ]] || fail "--keys 'model/dense/*' --keys 'model/b?ain/*' exported $n tensors, not 7 (2 variables, 4 slots, brain)"

# 5. Failures leave no output file: bad suffix, no match, damage (also under mpirun: no hang).
run 2 "$CAIRN" export "$C" "$T/out.npz"
run 2 "$CAIRN" export "$C" "$T/none.safetensors" --keys 'nothing/*'
run 2 "$CAIRN" export "$C" "$C"
cp "$C" "$T/flipped.h5" && "$DAMAGE" flip-tensor "$T/flipped.h5" model/embedding/.ATTRIBUTES/VARIABLE_VALUE 5
run 1 "$CAIRN" export "$T/flipped.h5" "$T/flipped.safetensors"
run 1 "$MPIEXEC" -n 3 --oversubscribe "$CAIRN" export "$T/flipped.h5" "$T/flipped.h5.h5"
run 3 "$CAIRN" export "$T/missing.h5" "$T/missing.safetensors"
run 3 "$CAIRN" export "$C" "$T/no-such-dir/out.safetensors"
CHECKS=$((CHECKS + 1))
leftovers=$(ls "$T" | grep -E '^(out\.npz|none\.safetensors|flipped\.safetensors|flipped\.h5\.h5|missing\.safetensors)|\.part-' || true)
[[ -z "$leftovers" ]] || fail "failed exports left files: $leftovers"
# --json: one object on success and on failure.
CHECKS=$((CHECKS + 1))
"$CAIRN" export --json "$C" "$T/j.safetensors" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["tensors"] == 24, j' ||
  fail "export --json"
CHECKS=$((CHECKS + 1))
"$CAIRN" export --json "$T/flipped.h5" "$T/j2.safetensors" >"$T/error.json" 2>/dev/null
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["code"] == "corrupt" and e["exit_code"] == 1, e' "$T/error.json" ||
  fail "export --json of a damaged checkpoint"

echo "export: $CHECKS checks, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
