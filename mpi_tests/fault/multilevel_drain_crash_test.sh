#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of a whole multi-level job during its background drain to the shared directory (level 3).
#
#   multilevel_drain_crash_test.sh CRASH_SAVER CAIRN_CLI   (env: MPIEXEC, CAIRN_TEST_DIR; by ctest)
#
# One machine, every rank its own node (CAIRN_RANK_PER_NODE=1) with its node-local directory under
# <case>/local, partner redundancy (XOR over groups of 2 at 4 ranks), a drain after every save
# (CAIRN_SHARED_EVERY=1). For N in 2 3 4:
#   1. mgr-save of step 1: node-local, protected, drained; the shared latest is ckpt-1.h5;
#   2. mgr-save of step 2 with CAIRN_FAULT_PAUSE=during_data:0@2: the node-local save passes rank
#      0's during_data point, the drain (the same save phases, on a background thread) stops there
#      half way through writing ckpt-2.h5.tmp-*; the state file already records ckpt-2 node-local;
#      then every rank is killed with kill -9 (mpirun is left to notice);
#   3. the job must end as a failure; the shared latest is still ckpt-1.h5 and no shared ckpt-2.h5
#      exists, only the drain's temporary file; the node-local directories are byte-identical to
#      what they were at the pause (the drain never touches them); `cairn verify` passes on the
#      shared ckpt-1.h5 and a plain restore of latest_checkpoint() gives step 1 exactly;
#   4. a fresh job at the same size restores step 2 exactly from node-local on every rank, nothing
#      rebuilt or skipped, and the manager's directory recovery deletes the drain's temporary file
#      (one note);
#   5. the job carries on: step 3 is saved and drained, and becomes the shared latest.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: multilevel_drain_crash_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: multilevel_drain_crash_test.sh CRASH_SAVER CAIRN_CLI}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
MPI_TIMEOUT=30
# shellcheck source=fault_lib.sh
source "$(dirname "$0")/fault_lib.sh"
unset CAIRN_KEEP_NODE_LOCAL
export CAIRN_RANK_PER_NODE=1 CAIRN_SHARED_EVERY=1

readonly RANK_COUNTS=(2 3 4)

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

# kill_job: kill -9 of every rank of the background job (children of its mpirun).
kill_job() {
  local launcher ranks
  launcher=$(pgrep -P "$MPI_PID" || true)
  ranks=$(for p in $launcher; do pgrep -P "$p"; done | tr '\n' ' ')
  [[ -n "${ranks// /}" ]] || { fail "no rank process found under the job's mpirun"; return; }
  # shellcheck disable=SC2086 # one pid per word
  kill -9 $ranks 2>/dev/null || true
  KILLED_RANKS=$(wc -w <<<"$ranks")
}

run_case() {
  local np="$1"
  local case_dir="$CAIRN_TEST_DIR/np$np"
  local dir="$case_dir/shared" logs="$CAIRN_TEST_DIR/np$np"
  begin_case
  export CAIRN_NODE_LOCAL_DIR="$case_dir/local"
  export CAIRN_REDUNDANCY=partner
  [[ "$np" -eq 4 ]] && CAIRN_REDUNDANCY=xor:2

  # 1. The previous checkpoint, at every level.
  run_mpi "$logs.save1.log" "$np" mgr-save "$dir" 1
  expect_ok "the save of step 1"
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "after step 1 the shared latest is '$(latest_of "$dir")'"

  # 2. The drain of step 2 paused half way; then the whole job killed.
  local resume="$case_dir/resume"
  PAUSE="during_data:0@2" PAUSE_FILE="$resume" BG=1 run_mpi "$logs.crash.log" "$np" mgr-save "$dir" 2
  wait_for_pause "$resume" 1 || true
  local tmps local_at_pause entries
  tmps=$(tmp_files "$dir")
  local_at_pause=$(snapshot "$case_dir/local")
  entries=$(python3 -c 'import json,sys; print(" ".join("%s:%s" % (e["name"], "shared" if e.get("shared", True) else "local") for e in json.load(open(sys.argv[1]))["checkpoints"]))' "$dir/cairn-state.json" 2>/dev/null || echo unreadable)
  KILLED_RANKS=0
  kill_job
  wait_mpi
  [[ "$RC" -ne 0 && "$RC" -ne 124 ]] || fail "the killed job exited $RC"
  [[ "$KILLED_RANKS" -eq "$np" ]] || fail "killed $KILLED_RANKS rank processes, expected $np"
  [[ "$tmps" == ckpt-2.h5.tmp-* ]] || fail "at the pause the shared directory had no drain temporary file ('$tmps')"
  [[ "$entries" == "ckpt-1.h5:shared ckpt-2.h5:local" ]] ||
    fail "at the pause the state file records '$entries', expected ckpt-2 node-local"

  # 3. Level 3 untouched: its previous checkpoint stays the latest and valid; level 1 unaffected.
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "after the crash the shared latest is '$(latest_of "$dir")'"
  [[ ! -e "$dir/ckpt-2.h5" ]] || fail "a shared ckpt-2.h5 exists after a crash during its drain"
  [[ "$(tmp_files "$dir")" == "$tmps" ]] || fail "the drain's temporary file changed: '$(tmp_files "$dir")'"
  [[ "$(snapshot "$case_dir/local")" == "$local_at_pause" ]] ||
    fail "the node-local directories changed after the pause"
  cairn_verify "$dir/ckpt-1.h5" "$logs.cli.log"
  run_mpi "$logs.verify1.log" "$np" verify "$dir" 1
  expect_ok "a plain restore of latest_checkpoint() (step 1)"

  # 4. The new checkpoint from node-local; recovery removes the drain's temporary file.
  run_mpi "$logs.verify2.log" "$np" mgr-verify "$dir" 2
  expect_ok "the manager's restore of step 2"
  local r
  for ((r = 0; r < np; ++r)); do
    grep -q "^crash_saver: rank $r restored step 2 at level 'node-local' from $case_dir/local/node-$r/ckpt-2.h5$" \
      "$logs.verify2.log" || fail "rank $r did not restore step 2 from its node-local part"
  done
  grep -q "^crash_saver: rebuilt nodes: (none)$" "$logs.verify2.log" || fail "a node was rebuilt"
  grep -q "(skipped 0)$" "$logs.verify2.log" || fail "a checkpoint was skipped"
  [[ -z "$(tmp_files "$dir")" ]] || fail "the drain's temporary file is still there: $(tmp_files "$dir")"
  grep -q "^cairn: $dir: deleted '${tmps% }', left by a save that did not complete$" "$logs.verify2.log" ||
    fail "no recovery note for the drain's temporary file '${tmps% }'"

  # 5. The job carries on.
  run_mpi "$logs.save3.log" "$np" mgr-save "$dir" 3
  expect_ok "the save of step 3"
  [[ "$(latest_of "$dir")" == ckpt-3.h5 ]] || fail "after step 3 the shared latest is '$(latest_of "$dir")'"

  end_case "$(printf 'np=%s %-8s' "$np" "$CAIRN_REDUNDANCY")" \
    "drain of ckpt-2 killed at rank 0's during_data ($KILLED_RANKS ranks, kill -9); shared latest ckpt-1 verifies and restores; node-local unchanged, ckpt-2 restores from it on every rank; ${tmps% } removed by recovery; step 3 drains"
}

echo "multilevel_drain_crash_test: kill -9 during the drain to level 3; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  run_case "$np"
done
echo "multilevel_drain_crash_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
