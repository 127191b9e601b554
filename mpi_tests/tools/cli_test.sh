#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The `cairn` command line, end to end: for every verb --help (exit 0), bad arguments (exit 2), a
# sound checkpoint (exit 0 and the expected output) and damaged ones (flipped byte: exit 1 naming
# the key; truncated or not HDF5: exit 3; no commit mark: exit 1; newer format: exit 3), diff's
# distinct code for damage, and --json output that parses, in success and failure, for every verb.
#
#   cli_test.sh CAIRN MAKE_GOLDEN DAMAGE GOLDEN_DIR   (env: MPIEXEC, CAIRN_TEST_DIR)
set -uo pipefail

CAIRN="${1:?usage: cli_test.sh CAIRN MAKE_GOLDEN DAMAGE GOLDEN_DIR}"
MAKE_GOLDEN="${2:?}"
DAMAGE="${3:?}"
GOLDEN="${4:?}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
T="$CAIRN_TEST_DIR"
rm -rf "$T"
mkdir -p "$T"
FAILED=0
CHECKS=0
BIAS=model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE
EMB=model/embedding/.ATTRIBUTES/VARIABLE_VALUE

# expect CODE NEEDLE CMD...: CMD must exit with CODE and print NEEDLE (stdout or stderr; "" = any).
expect() {
  local want="$1" needle="$2"
  shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  CHECKS=$((CHECKS + 1))
  if [[ "$rc" -ne "$want" ]] || { [[ -n "$needle" ]] && ! grep -qF -- "$needle" <<<"$out"; }; then
    FAILED=$((FAILED + 1))
    echo "FAIL: '$*' exited $rc (want $want)${needle:+, output should contain '$needle'}"
    sed 's/^/    | /' <<<"$out" | head -40
  else
    echo "ok   $want  ${*#"$CAIRN "}"
  fi
}

# expect_json CODE KIND CMD...: CMD must exit with CODE and print exactly one JSON object on standard
# output; KIND "error" means an error object {"error": {..., "exit_code": CODE}}, "result" anything
# else.
expect_json() {
  local want="$1" kind="$2"
  shift 2
  local rc=0
  "$@" >"$T/stdout.json" 2>"$T/stderr.txt" || rc=$?
  CHECKS=$((CHECKS + 1))
  local why=""
  [[ "$rc" -eq "$want" ]] || why="exited $rc (want $want)"
  if [[ -z "$why" ]] && ! python3 - "$T/stdout.json" "$kind" "$want" <<'PY'; then why="bad JSON"; fi
import json, sys
j = json.load(open(sys.argv[1]))
assert isinstance(j, dict), j
if sys.argv[2] == "error":
    e = j["error"]
    assert e["exit_code"] == int(sys.argv[3]) and e["code"] and e["message"], e
else:
    assert "error" not in j, j
PY
  if [[ -n "$why" ]]; then
    FAILED=$((FAILED + 1))
    echo "FAIL: '$*' $why"
    sed 's/^/    | /' "$T/stdout.json" "$T/stderr.txt" | head -20
  else
    echo "ok   $want  ${*#"$CAIRN "}  (JSON $kind)"
  fi
}

# 1. Usage: every verb has --help; bad arguments are exit 2.
expect 0 "Subcommands:" "$CAIRN" --help
expect 0 "4 diff only: a checkpoint is damaged" "$CAIRN" --help
expect 0 "cairn 0." "$CAIRN" --version
expect 2 "A subcommand is required" "$CAIRN"
expect 2 "unknown verb 'frobnicate'" "$CAIRN" frobnicate
expect 2 "unknown verb 'bogus-verb'" "$CAIRN" bogus-verb
expect 2 "unknown verb 'verfy'; did you mean 'verify'?" "$CAIRN" verfy
expect 2 "did you mean 'ls' or 'list'?" "$CAIRN" lst --json
expect 2 "Verbs: info, ls, tree" "$CAIRN" xyzzy-plugh
expect 2 "-3 is out of range: expected an integer >= 0" "$CAIRN" cat a.h5 key --limit -3
expect 2 "expected an integer from 64 B to 1 TiB" "$CAIRN" diff a.h5 b.h5 --chunk-bytes 1
expect 2 "expected an integer from 4 KiB to 1 TiB" "$CAIRN" verify x --chunk-bytes 2000000000000
expect 2 "'many' is not an integer from 0 to 1000000" "$CAIRN" verify x --max-problems many
for verb in info ls tree verify diff cat latest list export; do
  expect 0 "Usage:" "$CAIRN" "$verb" --help
  expect 2 "" "$CAIRN" "$verb"
  expect 2 "" "$CAIRN" "$verb" --no-such-option x y
done
expect 2 "" "$CAIRN" diff only-one.h5
expect 2 "" "$CAIRN" cat only-a-file.h5
expect 2 "" "$CAIRN" cat a.h5 key --limit -3
expect 2 "" "$CAIRN" verify x --max-problems many

# 2. Sound checkpoints, fresh from the current writer (2 ranks), and the committed golden ones.
"$MPIEXEC" -n 2 --oversubscribe "$MAKE_GOLDEN" "$T/run" >"$T/make.log" 2>&1 || {
  echo "FAIL: make_golden"; cat "$T/make.log"; exit 1; }
C="$T/run/ckpt-2.h5"
expect 0 "status        committed" "$CAIRN" info "$C"
expect 0 "save counter  2" "$CAIRN" info "$C"
expect 0 '"status": "committed"' "$CAIRN" info --json "$C"
expect 0 "24 tensors, 1.2 KiB" "$CAIRN" ls "$C"
expect 0 "$EMB" "$CAIRN" ls "$C"
expect 0 '"storage": "dataset"' "$CAIRN" ls --json "$C"
expect 0 "└── (slots)" "$CAIRN" tree "$C"
expect 0 "-> model/embedding  (shared, expanded there)" "$CAIRN" tree "$C"
expect 0 "verdict     OK" "$CAIRN" verify "$C"
expect 0 '"verdict": "ok"' "$CAIRN" verify --json "$C"
expect 0 "verdict     OK: 2 checked, 0 damaged" "$CAIRN" verify "$T/run"
expect 1 "1 identical, 23 differ" "$CAIRN" diff "$T/run/ckpt-1.h5" "$C"
expect 0 "24 identical, 0 differ" "$CAIRN" diff "$C" "$C"
expect 1 "1 identical, 23 differ" "$CAIRN" diff --changes-only "$GOLDEN/ckpt-1.h5" "$C"
expect 0 "[0:3]  -0.125    0.75   1.625" "$CAIRN" cat "$C" model/dense/bias
expect 0 "slice [1:3, 2:4] (4 elements)" "$CAIRN" cat "$C" "$EMB" --slice 1:3,2:
expect 0 "... 38 more elements" "$CAIRN" cat "$C" model/half --limit 2
expect 0 "per_rank state, value of rank 1" "$CAIRN" cat "$C" data --rank 1
expect 2 "bad slice" "$CAIRN" cat "$C" "$EMB" --slice 0:7
expect 2 "no tensor or state with this key" "$CAIRN" cat "$C" model/nothing
expect 0 "$T/run/ckpt-2.h5" "$CAIRN" latest "$T/run"
expect 0 "ckpt-2.h5  committed  latest" "$CAIRN" list "$T/run"
expect 0 '"status": "committed"' "$CAIRN" list --json "$T/run"
# The committed golden checkpoints verify, and the current writer stores the same values.
expect 0 "verdict     OK: 2 checked, 0 damaged" "$CAIRN" verify "$GOLDEN"
expect 0 "24 identical, 0 differ" "$CAIRN" diff "$GOLDEN/ckpt-2.h5" "$C"
expect 0 "$GOLDEN/ckpt-2.h5" "$CAIRN" latest "$GOLDEN"

# 3. Damage.
cp "$C" "$T/flipped.h5" && "$DAMAGE" flip-tensor "$T/flipped.h5" "$EMB" 5
expect 1 "$EMB" "$CAIRN" verify "$T/flipped.h5"
expect 1 "checksum mismatch" "$CAIRN" verify "$T/flipped.h5"
expect 1 '"box": "[0:2, 0:4]"' "$CAIRN" verify --json "$T/flipped.h5"
expect 1 "checksum mismatch" "$CAIRN" cat "$T/flipped.h5" "$EMB"
# diff: damage (4) is not a difference (1).
expect 4 "checksum mismatch" "$CAIRN" diff "$C" "$T/flipped.h5"
expect 4 "checksum mismatch" "$CAIRN" diff "$T/flipped.h5" "$C"
expect 0 "status        committed" "$CAIRN" info "$T/flipped.h5"  # info reads no tensor data
cp "$C" "$T/state.h5" && "$DAMAGE" flip-state "$T/state.h5" data/.ATTRIBUTES/STATE 1
expect 1 "rank 1" "$CAIRN" verify "$T/state.h5"
cp "$C" "$T/truncated.h5" && "$DAMAGE" truncate "$T/truncated.h5" 20000
for verb in info ls tree verify; do
  expect 3 "truncated" "$CAIRN" "$verb" "$T/truncated.h5"
done
# The library's word for it: corrupt (ContainerReader's kCorrupt), not "I/O error".
for verb in info ls tree; do
  expect 3 "cairn $verb: corrupt: cannot open as HDF5" "$CAIRN" "$verb" "$T/truncated.h5"
done
expect 3 "cannot open as HDF5" "$CAIRN" cat "$T/truncated.h5" "$EMB"
expect 3 "cannot open as HDF5" "$CAIRN" diff "$C" "$T/truncated.h5"
echo "plain text" >"$T/text.h5"
expect 3 "file signature not found" "$CAIRN" verify "$T/text.h5"
expect 3 "no such file" "$CAIRN" info "$T/missing.h5"
expect 3 "no such file" "$CAIRN" verify "$T/missing.h5"
cp "$C" "$T/uncommitted.h5" && "$DAMAGE" uncommit "$T/uncommitted.h5"
expect 1 "no commit mark" "$CAIRN" verify "$T/uncommitted.h5"
expect 1 "status        uncommitted" "$CAIRN" info "$T/uncommitted.h5"
for verb in ls tree; do expect 1 "no commit mark" "$CAIRN" "$verb" "$T/uncommitted.h5"; done
expect 4 "no commit mark" "$CAIRN" diff "$C" "$T/uncommitted.h5"
cp "$C" "$T/manifest.h5" && "$DAMAGE" flip-manifest "$T/manifest.h5"
expect 1 "manifest checksum mismatch" "$CAIRN" verify "$T/manifest.h5"
expect 1 "manifest checksum mismatch" "$CAIRN" ls "$T/manifest.h5"
# Format 2.0: the table and every rank's record are checked too.
cp "$C" "$T/table.h5" && "$DAMAGE" flip-table "$T/table.h5"
expect 1 "table checksum mismatch" "$CAIRN" verify "$T/table.h5"
expect 1 "table checksum mismatch" "$CAIRN" ls "$T/table.h5"
cp "$C" "$T/record.h5" && "$DAMAGE" flip-record "$T/record.h5" 1
expect 1 "record of rank 1" "$CAIRN" verify "$T/record.h5"
expect 1 "record of rank 1" "$CAIRN" ls "$T/record.h5"
cp "$C" "$T/v3.h5" && "$DAMAGE" set-version "$T/v3.h5" 3.0
expect 3 "checkpoint format 3.0 is newer than this cairn reads" "$CAIRN" info "$T/v3.h5"
expect 3 "UNSUPPORTED" "$CAIRN" verify "$T/v3.h5"
cp "$C" "$T/v27.h5" && "$DAMAGE" set-version "$T/v27.h5" 2.7
expect 0 "verdict     OK" "$CAIRN" verify "$T/v27.h5"
# The 1.x golden files: a newer major is refused, a newer minor read.
cp "$GOLDEN/ckpt-2.h5" "$T/g3.h5" && "$DAMAGE" set-version "$T/g3.h5" 3.0
expect 3 "checkpoint format 3.0 is newer than this cairn reads" "$CAIRN" info "$T/g3.h5"
cp "$GOLDEN/ckpt-2.h5" "$T/g17.h5" && "$DAMAGE" set-version "$T/g17.h5" 1.7
expect 0 "verdict     OK" "$CAIRN" verify "$T/g17.h5"

# 4. Directories: leftovers, damage, a damaged state file.
cp -r "$T/run" "$T/dir"
cp "$T/uncommitted.h5" "$T/dir/ckpt-3.h5.tmp-99-1"
cp "$T/flipped.h5" "$T/dir/ckpt-1.h5"
expect 1 "ckpt-1.h5           DAMAGED  save counter 2" "$CAIRN" verify "$T/dir"
expect 1 "SKIPPED  temporary file of a save" "$CAIRN" verify "$T/dir"
expect 0 "ckpt-3.h5.tmp-99-1  temporary" "$CAIRN" list "$T/dir"  # list reads no tensor data
cp "$T/truncated.h5" "$T/dir/ckpt-4.h5"
expect 1 "ckpt-4.h5           unreadable" "$CAIRN" list "$T/dir"
echo "{ damaged" >"$T/dir/cairn-state.json"
expect 3 "cairn latest: corrupt: the state file is damaged" "$CAIRN" latest "$T/dir"
expect 1 "state file  damaged" "$CAIRN" list "$T/dir"
expect 1 "the state file is damaged" "$CAIRN" verify "$T/dir"
# A state file naming a latest checkpoint that does not exist is not "ok".
cp -r "$T/run" "$T/stale" && rm "$T/stale/ckpt-2.h5"
expect 1 "state file  stale: names 'ckpt-2.h5' as the latest checkpoint, but it does not exist" \
  "$CAIRN" list "$T/stale"
expect 1 "state file  stale: names 'ckpt-2.h5' as the latest checkpoint" "$CAIRN" verify "$T/stale"
CHECKS=$((CHECKS + 1))
if "$CAIRN" list "$T/stale" 2>&1 | grep -q "state file  ok"; then
  FAILED=$((FAILED + 1)); echo "FAIL: list says 'state file  ok' with the latest file missing"; fi
expect_json 1 result "$CAIRN" list --json "$T/stale"
expect 1 '"status": "stale"' "$CAIRN" verify --json "$T/stale"
mkdir -p "$T/empty"
expect 1 "no checkpoint recorded" "$CAIRN" latest "$T/empty"
expect 3 "no such directory" "$CAIRN" latest "$T/nowhere"
expect 3 "no such directory" "$CAIRN" list "$T/nowhere"
expect 2 "not a directory" "$CAIRN" list "$C"

# 5. --json: one JSON object on standard output, in success and in failure, for every verb.
for verb in info ls tree; do
  expect_json 0 result "$CAIRN" "$verb" --json "$C"
  expect_json 3 error "$CAIRN" "$verb" --json "$T/missing.h5"
  expect_json 3 error "$CAIRN" "$verb" --json "$T/truncated.h5"
done
expect_json 1 error "$CAIRN" ls --json "$T/uncommitted.h5"
expect_json 1 error "$CAIRN" tree --json "$T/manifest.h5"
expect_json 1 result "$CAIRN" info --json "$T/uncommitted.h5"
expect_json 0 result "$CAIRN" verify --json "$C"
expect_json 0 result "$CAIRN" verify --json "$T/run"
expect_json 1 result "$CAIRN" verify --json "$T/flipped.h5"
expect_json 3 result "$CAIRN" verify --json "$T/missing.h5"
expect_json 0 result "$CAIRN" diff --json "$C" "$C"
expect_json 1 result "$CAIRN" diff --json "$T/run/ckpt-1.h5" "$C"
expect_json 4 error "$CAIRN" diff --json "$C" "$T/flipped.h5"
expect_json 3 error "$CAIRN" diff --json "$C" "$T/truncated.h5"
expect_json 0 result "$CAIRN" cat --json "$C" model/dense/bias
expect_json 0 result "$CAIRN" cat --json "$C" model/mask --limit 0
expect_json 0 result "$CAIRN" cat --json "$C" data --rank 1
expect_json 2 error "$CAIRN" cat --json "$C" "$EMB" --slice 0:7
expect_json 2 error "$CAIRN" cat --json "$C" model/nothing
expect_json 1 error "$CAIRN" cat --json "$T/flipped.h5" "$EMB"
expect_json 0 result "$CAIRN" latest --json "$T/run"
expect_json 1 result "$CAIRN" latest --json "$T/empty"
expect_json 3 error "$CAIRN" latest --json "$T/dir"
expect_json 3 error "$CAIRN" latest --json "$T/nowhere"
expect_json 0 result "$CAIRN" list --json "$T/run"
expect_json 1 result "$CAIRN" list --json "$T/dir"
expect_json 3 error "$CAIRN" list --json "$T/nowhere"
expect_json 2 error "$CAIRN" list --json "$C"
expect_json 0 result "$CAIRN" export --json "$C" "$T/out.safetensors"
expect_json 2 error "$CAIRN" export --json "$C" "$T/out.npz"
expect_json 1 error "$CAIRN" export --json "$T/flipped.h5" "$T/out.h5"
expect_json 2 error "$CAIRN" bogus-verb --json
expect_json 2 error "$CAIRN" info --json
expect_json 2 error "$CAIRN" cat --json "$C" "$EMB" --limit -1
# The values of cat --json are the numbers the text shows.
CHECKS=$((CHECKS + 1))
"$CAIRN" cat --json "$C" model/dense/bias | python3 -c 'import json,sys; v=json.load(sys.stdin)["values"]; assert v == [-0.125, 0.75, 1.625], v' ||
  { FAILED=$((FAILED + 1)); echo "FAIL: cat --json values"; }

# 6. Under mpirun only rank 0 prints; --serial keeps a child of an MPI job out of MPI.
expect 0 "checked on 1 rank" env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$CAIRN" verify --serial "$C"
out=$("$MPIEXEC" -n 2 --oversubscribe "$CAIRN" ls "$C" | grep -c "24 tensors")
CHECKS=$((CHECKS + 1))
if [[ "$out" != 1 ]]; then FAILED=$((FAILED + 1)); echo "FAIL: ls under mpirun printed $out times"; fi

echo "cli: $CHECKS checks, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
