#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The tools on a multi-level checkpoint directory: a CheckpointManager (crash_saver's mgr-save,
# turned multi-level by CAIRN_NODE_LOCAL_DIR, partner redundancy, a node per rank) saves two
# checkpoints on 2 ranks (the first node-local only, the second drained to the shared directory)
# and on 1, 3 and 4 ranks. `cairn list` must show both levels and each node's part; `cairn verify`
# must pass on each part (at 1, 2 and 4 verifying ranks) and say it covers that part only, and fail
# on a damaged part naming the part and the piece; a part is never taken for a whole checkpoint.
#
# The h5py reader of docs/format.md must refuse a part, naming it, and still read the shared file.
#
# So must the independent interop reader (mpi_tests/interop/h5py_read.py), which reads the shared
# file.
#
#   cli_multilevel_test.sh CAIRN CRASH_SAVER DAMAGE FORMAT_MD GOLDEN_H5PY_PY WITH_H5PY H5PY_READ_PY
#   (env: MPIEXEC, CAIRN_TEST_DIR)
set -uo pipefail

CAIRN="${1:?usage: cli_multilevel_test.sh CAIRN CRASH_SAVER DAMAGE}"
SAVER="${2:?}"
DAMAGE="${3:?}"
FORMAT_MD="${4:?}"
GOLDEN_H5PY="${5:?}"
WITH_H5PY="${6:?}"
H5PY_READ="${7:?}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
T="$CAIRN_TEST_DIR"
rm -rf "$T"
mkdir -p "$T"
FAILED=0
CHECKS=0
# crash_saver's block-sharded tensor: [9000, 33] f32, rows split evenly among the writers.
WEIGHTS=weights/.ATTRIBUTES/VARIABLE_VALUE

# expect CODE NEEDLE... -- CMD...: CMD must exit with CODE and print every NEEDLE.
expect() {
  local want="$1"
  shift
  local needles=()
  while [[ "$1" != "--" ]]; do
    needles+=("$1")
    shift
  done
  shift
  local out rc=0
  out=$(timeout -k 5 60 "$@" 2>&1) || rc=$?
  CHECKS=$((CHECKS + 1))
  local why=""
  [[ "$rc" -eq "$want" ]] || why="exited $rc (want $want)"
  for n in "${needles[@]}"; do
    grep -qF -- "$n" <<<"$out" || why="$why; no '$n' in the output"
  done
  if [[ -n "$why" ]]; then
    FAILED=$((FAILED + 1))
    echo "FAIL: '$*': $why"
    sed 's/^/    | /' <<<"$out" | head -40
  else
    echo "ok   $want  ${*#"$CAIRN "}"
  fi
}

# check_json FILE PYTHON-EXPRESSION: the expression over `j` (the JSON in FILE) must be true.
check_json() {
  CHECKS=$((CHECKS + 1))
  if python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; then
    echo "ok   JSON $2"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL: JSON of $1: $2"
    sed 's/^/    | /' "$1" | head -60
  fi
}

# save NP SHARED LOCAL STEP: two manager saves (STEP, STEP+1) on NP ranks, each rank its own node.
save() {
  local np="$1" shared="$2" local_root="$3" step="$4"
  if ! CAIRN_NODE_LOCAL_DIR="$local_root" CAIRN_REDUNDANCY=partner CAIRN_RANK_PER_NODE=1 \
    CAIRN_SHARED_EVERY=2 timeout -k 5 60 "$MPIEXEC" -n "$np" --oversubscribe "$SAVER" \
    mgr-save-twice "$shared" "$step" >"$T/save.np$np.log" 2>&1; then
    echo "FAIL: the multi-level save on $np ranks"
    sed 's/^/    | /' "$T/save.np$np.log"
    exit 1
  fi
}

# 1. Two ranks, two nodes: ckpt-1 node-local only, ckpt-2 also drained to the shared directory.
S="$T/shared" L="$T/local"
save 2 "$S" "$L" 1
unset CAIRN_NODE_LOCAL_DIR
expect 0 "ckpt-1.h5  node-local" "node-local(2 ranks on 2 nodes)" \
  "shared+node-local(2 ranks on 2 nodes)" -- "$CAIRN" list "$S"
expect 0 "node directories 0, 1" "2/2 ok here" -- "$CAIRN" list "$S" --node-local "$L"
expect 0 "node directories 0, 1" "2/2 ok here" -- env CAIRN_NODE_LOCAL_DIR="$L" "$CAIRN" list "$S"
"$CAIRN" list --json "$S" --node-local "$L" >"$T/list.json" 2>"$T/list.err"
check_json "$T/list.json" 'j["sound"] and [f["name"] for f in j["files"]] == ["ckpt-1.h5", "ckpt-2.h5"]'
check_json "$T/list.json" 'j["files"][0]["status"] == "node-local" and j["files"][0]["levels"] == {"shared": False, "node_local": {"ranks": 2, "nodes": 2}}'
check_json "$T/list.json" 'j["files"][1]["status"] == "committed" and j["files"][1]["levels"]["shared"] is True'
check_json "$T/list.json" 'all([p["node"] for p in f["node_local_parts"]] == [0, 1] and all(p["status"] == "ok" for p in f["node_local_parts"]) for f in j["files"])'
# On a cluster a machine sees its own node's directory only: the other parts are not "missing".
mkdir -p "$T/one-node" && cp -r "$L/node-1" "$T/one-node/"
expect 0 "node directories 1" "1/2 ok here" -- "$CAIRN" list "$S" --node-local "$T/one-node"
expect 3 "no such node-local directory" -- "$CAIRN" list "$S" --node-local "$T/absent"
# The shared directory's verify checks the shared file and notes the node-local-only checkpoint.
expect 0 "ckpt-2.h5  OK" "'ckpt-1.h5' is recorded at the node-local level only" -- \
  "$CAIRN" verify "$S"

# The directory with its node parts: every part verified, as a part, at 1 and 2 verifying ranks.
expect 0 "node-0/ckpt-1.h5  OK       part 1 of 2 only" "node-1/ckpt-2.h5  OK       part 2 of 2 only" \
  "verdict     OK: 5 checked, 0 damaged" -- "$CAIRN" verify "$S" --node-local "$L"
expect 0 "verdict     OK: 5 checked, 0 damaged (2 ranks)" -- \
  env CAIRN_NODE_LOCAL_DIR="$L" "$MPIEXEC" -n 2 --oversubscribe "$CAIRN" verify "$S"
"$CAIRN" verify --json "$S" --node-local "$L" >"$T/verify-dir.json" 2>/dev/null
check_json "$T/verify-dir.json" '[c["file"] for c in j["checkpoints"]] == ["ckpt-2.h5", "node-0/ckpt-1.h5", "node-1/ckpt-1.h5", "node-0/ckpt-2.h5", "node-1/ckpt-2.h5"] and [c.get("part", {}).get("index") for c in j["checkpoints"]] == [None, 0, 1, 0, 1] and j["warnings"] == [] and j["notes"] == []'

# 2. Each part verifies, as a part.
for k in 0 1; do
  part="$L/node-$k/ckpt-1.h5"
  expect 0 "part $((k + 1)) of 2 of a node-local checkpoint (node $k, writer $k)" \
    "OK (part $((k + 1)) of 2 only, not the whole checkpoint)" \
    "the records of every other writer are empty" -- "$CAIRN" verify "$part"
  for np in 2 4; do
    expect 0 "OK (part $((k + 1)) of 2 only" "checked on $np ranks" -- \
      "$MPIEXEC" -n "$np" --oversubscribe "$CAIRN" verify "$part"
  done
  "$CAIRN" verify --json "$part" >"$T/part$k.json" 2>/dev/null
  check_json "$T/part$k.json" "j['verdict'] == 'ok' and j['checked'] == 'part' and j['part'] == {'index': $k, 'count': 2, 'writers': [$k]} and j['pieces_checked'] == 2 and j['blobs_checked'] == 1"
  expect 0 "part $((k + 1)) of 2 of a node-local checkpoint" "format        2.1" -- "$CAIRN" info "$part"
  expect 0 "part $((k + 1)) of 2 of a node-local checkpoint" "$WEIGHTS" -- "$CAIRN" ls "$part"
  expect 0 "holds part $((k + 1)) of 2" -- "$CAIRN" list "$L/node-$k"
done
"$CAIRN" verify --json "$S/ckpt-2.h5" >"$T/whole.json" 2>/dev/null
check_json "$T/whole.json" "j['verdict'] == 'ok' and j['checked'] == 'checkpoint' and 'part' not in j"

# 3. Damage in a part: the piece of writer 1 (rows 4500-8999) in part 2.
cp "$L/node-1/ckpt-1.h5" "$T/damaged-part.h5"
"$DAMAGE" flip-tensor "$T/damaged-part.h5" "$WEIGHTS" $((4500 * 33 + 7))
expect 1 "DAMAGED: 1 problem (part 2 of 2 only" "[4500:9000, 0:33]" "checksum mismatch" -- \
  "$CAIRN" verify "$T/damaged-part.h5"
expect 1 "DAMAGED" "[4500:9000, 0:33]" -- "$MPIEXEC" -n 2 --oversubscribe "$CAIRN" verify "$T/damaged-part.h5"
cp "$L/node-1/ckpt-1.h5" "$T/damaged-state.h5"
"$DAMAGE" flip-state "$T/damaged-state.h5" progress/.ATTRIBUTES/STATE 1
expect 1 "(part 2 of 2 only" "rank 1" -- "$CAIRN" verify "$T/damaged-state.h5"
# A damaged record in a node directory: list (manifests only) names the node, verify the writer.
cp -r "$L" "$T/local-bad"
"$DAMAGE" flip-record "$T/local-bad/node-1/ckpt-2.h5" 1
expect 1 "1/2 ok here; node-1: corrupt" "record of rank 1" -- "$CAIRN" list "$S" --node-local "$T/local-bad"
expect 1 "record of rank 1" "part 2 of 2 of a node-local checkpoint" -- \
  "$CAIRN" verify "$T/local-bad/node-1/ckpt-2.h5"
# A part whose index gives an absent writer (rank 0, in part 2) a record is corrupt, not read.
cp "$L/node-1/ckpt-1.h5" "$T/absent-record.h5"
cat >"$T/absent_record.py" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r+") as f:
    offsets = f["cairn/record_offsets"][()]
    assert offsets[0] == offsets[1] < offsets[2], offsets  # rank 0's record is empty in part 2
    offsets[1] = offsets[2]  # rank 0 takes rank 1's bytes
    f["cairn/record_offsets"][...] = offsets
PY
bash "$WITH_H5PY" "$T/absent_record.py" "$T/absent-record.h5"
expect 1 "holds a record of" "for rank 0, which is not one of its writers" "part 2 of 2" -- \
  "$CAIRN" verify "$T/absent-record.h5"
# A part where the state file records a whole checkpoint is not one.
cp -r "$S" "$T/shared-swapped" && cp "$L/node-0/ckpt-2.h5" "$T/shared-swapped/ckpt-2.h5"
expect 1 "holds part 1 of 2 of a node-local checkpoint" "where the state file records one" -- \
  "$CAIRN" list "$T/shared-swapped"
# Parts swapped between node directories are not the parts those nodes hold.
mkdir -p "$T/local-swapped/node-0" "$T/local-swapped/node-1"
cp "$L/node-0/ckpt-2.h5" "$T/local-swapped/node-1/ckpt-2.h5"
cp "$L/node-1/ckpt-2.h5" "$T/local-swapped/node-0/ckpt-2.h5"
expect 1 "node-0: holds part 2 of 2" "expected part 1 of 2" -- \
  "$CAIRN" list "$S" --node-local "$T/local-swapped"
expect 1 "node-0/ckpt-2.h5" \
  "holds part 2 of 2 of a node-local checkpoint (node 1, writer 1), not part 1 of 2 that its node directory should hold" -- \
  "$CAIRN" verify "$S" --node-local "$T/local-swapped"
expect 1 "node-1/ckpt-2.h5  DAMAGED" "record of rank 1" -- "$CAIRN" verify "$S" --node-local "$T/local-bad"

# The reference reader of docs/format.md (h5py + numpy): a part is refused by name, the shared
# file of the same checkpoint read.
cat >"$T/doc_reader.py" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import h5py
from golden_h5py import example_code
code = example_code(sys.argv[2])
with h5py.File(sys.argv[3], "r") as f:
    try:
        code["tensors"](f)
        print("the part was read as a whole checkpoint")
        sys.exit(1)
    except ValueError as e:
        print("refused:", e)
value = code["load"](sys.argv[4], "weights/.ATTRIBUTES/VARIABLE_VALUE")
print("shared file read:", value.shape)
PY
expect 0 "refused:" "part 2 of 2 of a node-local checkpoint (ranks [1] of 2)" "shared file read: (9000, 33)" -- \
  bash "$WITH_H5PY" "$T/doc_reader.py" "$(dirname "$GOLDEN_H5PY")" "$FORMAT_MD" \
  "$L/node-1/ckpt-2.h5" "$S/ckpt-2.h5"

expect 1 "part 2 of 2 of a node-local checkpoint (ranks [1] of 2)" "h5py_read: FAILED" -- \
  bash "$WITH_H5PY" "$H5PY_READ" "$L/node-1/ckpt-2.h5" --writer crash_saver --step 2 --world-size 2
expect 0 "h5py_read: OK: every check passed" -- \
  bash "$WITH_H5PY" "$H5PY_READ" "$S/ckpt-2.h5" --writer crash_saver --step 2 --world-size 2

# 3 ranks, three nodes: every part says which of three it is, and holds one writer's rows.
S3="$T/shared3" L3="$T/local3"
save 3 "$S3" "$L3" 1
expect 0 "node directories 0, 1, 2" "3/3 ok here" "node-local(3 ranks on 3 nodes)" -- \
  "$CAIRN" list "$S3" --node-local "$L3"
for k in 0 1 2; do
  expect 0 "OK (part $((k + 1)) of 3 only" "writer $k)" -- "$CAIRN" verify "$L3/node-$k/ckpt-2.h5"
  cp "$L3/node-$k/ckpt-2.h5" "$T/damaged3.h5"
  "$DAMAGE" flip-tensor "$T/damaged3.h5" "$WEIGHTS" $((k * 3000 * 33 + 1))
  expect 1 "(part $((k + 1)) of 3 only" "[$((k * 3000)):$(((k + 1) * 3000)), 0:33]" -- \
    "$CAIRN" verify "$T/damaged3.h5"
done

# 1 rank (one node: part 1 of 1 holds every writer, still a part) and 4 ranks (2250 rows each):
# list and verify every part.
for np in 1 4; do
  save "$np" "$T/shared$np" "$T/local$np" 1
  expect 0 "$np/$np ok here" "node-local($np rank" -- \
    "$CAIRN" list "$T/shared$np" --node-local "$T/local$np"
  expect 0 "verdict     OK: $((2 * np + 1)) checked, 0 damaged" -- \
    "$CAIRN" verify "$T/shared$np" --node-local "$T/local$np"
  for ((k = 0; k < np; k++)); do
    expect 0 "OK (part $((k + 1)) of $np only" "writer $k)" -- \
      "$CAIRN" verify "$T/local$np/node-$k/ckpt-1.h5"
  done
done

echo "$CHECKS checks, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
