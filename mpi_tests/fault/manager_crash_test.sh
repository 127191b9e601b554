#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real-crash test of CheckpointManager: a job saving through the manager is killed with kill -9
# (CAIRN_FAULT_INJECT) at each phase of a save; the next job's restore_or_initialize must restore
# the newest complete checkpoint with exact values, report and clean the crash's leftovers, and
# save again.
#
#   manager_crash_test.sh CRASH_SAVER      (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# For N in 2 3, and each phase with the rank killed there:
#   before_data, during_data: the last rank;  after_data, before_rename, before_state_file: rank 0
#   1. start from a directory where the manager (max_to_keep 2) saved steps 1 and 2, plus a
#      stranger's temporary file "notmine-3.h5.tmp-1-1" (built once per N, copied per case);
#   2. `mgr-save DIR 3` with the fault: the job must die (not hang, not succeed), killed by the
#      targeted rank; on disk the state file still names ckpt-2.h5; ckpt-3.h5 exists only after a
#      crash at before_state_file, and then no temporary file is left; otherwise exactly one
#      ckpt-3.h5.tmp-* is left;
#   3. the next job (`mgr-save DIR 4`, no fault) must restore the newest complete checkpoint with
#      exact values: step 3 after before_state_file (the committed file the state file never
#      heard of, adopted by the manager's recovery), step 2 otherwise (a temporary file is never
#      a checkpoint, even one with its commit mark). Its recovery notes, printed by rank 0, must be
#      exactly one line: "adopted 'ckpt-3.h5': ..." or "deleted 'ckpt-3.h5.tmp-...', left by a
#      save that did not complete"; no checkpoint may be skipped. Its save of step 4 must work and
#      retire the oldest: the state file then lists [ckpt-E, ckpt-4] (E the restored step) with
#      ckpt-4 the latest, the directory holds exactly those files, the state file and the
#      stranger's file, and no ckpt-*.tmp-* is left;
#   4. `mgr-verify DIR 4` on the other rank count (2 <-> 3) restores step 4 exactly, with no
#      recovery note.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: manager_crash_test.sh CRASH_SAVER}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT

readonly MPI_TIMEOUT=60
readonly RANK_COUNTS=(2 3)
readonly STRANGER=notmine-3.h5.tmp-1-1

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

# run_mpi LOG INJECT NP ARGS...: runs the saver on NP ranks under a timeout, output to LOG, and
# sets RC (124 = timed out). INJECT is the CAIRN_FAULT_INJECT value, or "" for none.
RC=0
run_mpi() {
  local log="$1" inject="$2" np="$3"
  shift 3
  local -a env_cmd=(env -u CAIRN_FAULT_INJECT)
  if [[ -n "$inject" ]]; then env_cmd=(env "CAIRN_FAULT_INJECT=$inject"); fi
  RC=0
  LOGS+=("$log")
  local start=$SECONDS
  timeout -k 10 "$MPI_TIMEOUT" "${env_cmd[@]}" "$MPIEXEC" -n "$np" --oversubscribe \
    "$SAVER" "$@" >"$log" 2>&1 || RC=$?
  # A killed rank makes mpirun exit 137 too; only the clock tells a timeout (TERM or KILL) apart.
  if ((SECONDS - start >= MPI_TIMEOUT)); then RC=124; fi
}

# state_of DIR: "latest=<name> checkpoints=<name,name...>" from the state file.
state_of() {
  python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print("latest=%s checkpoints=%s" % (s["latest"], ",".join(e["name"] for e in s["checkpoints"])))
' "$1/cairn-state.json" 2>/dev/null || echo "(unreadable state file)"
}

ERRORS=()
LOGS=()
fail() { ERRORS+=("$1"); }

# expect_ok WHAT: the last run_mpi exited 0 without an HDF5 error stack.
expect_ok() {
  local log="${LOGS[-1]}" what="$1"
  if [[ "$RC" -eq 124 ]]; then
    fail "$what hung (killed after ${MPI_TIMEOUT}s)"
  elif [[ "$RC" -ne 0 ]]; then
    fail "$what exited $RC"
  fi
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
}

# notes_of LOG DIR: the manager's diagnostics about DIR (recovery notes, skipped checkpoints).
notes_of() {
  grep -e "^cairn: $2: " -e "^cairn: skipped checkpoint" \
    -e "^cairn: restore_or_initialize: resumed from .*after skipping" "$1" |
    sed "s|^cairn: $2: ||" || true
}

make_baseline() {
  local np="$1" dir="$CAIRN_TEST_DIR/baseline-np$1"
  ERRORS=()
  LOGS=()
  run_mpi "$dir.save1.log" "" "$np" mgr-save "$dir" 1
  expect_ok "baseline manager save of step 1"
  grep -q "^crash_saver: manager initialized$" "$dir.save1.log" ||
    fail "the first job did not initialize"
  run_mpi "$dir.save2.log" "" "$np" mgr-save "$dir" 2
  expect_ok "baseline manager save of step 2"
  grep -q "^crash_saver: manager restored step 1 from $dir/ckpt-1.h5 (skipped 0)$" \
    "$dir.save2.log" || fail "the second job did not restore step 1"
  [[ "$(state_of "$dir")" == "latest=ckpt-2.h5 checkpoints=ckpt-1.h5,ckpt-2.h5" ]] ||
    fail "baseline state: $(state_of "$dir")"
  echo "stranger" >"$dir/$STRANGER"
  if [[ ${#ERRORS[@]} -gt 0 ]]; then
    echo "FATAL: cannot build the baseline on $np ranks: ${ERRORS[*]}"
    cat "${LOGS[@]}"
    exit 1
  fi
}

FAILED=0
CASES=0

run_case() {
  local np="$1" phase="$2" target="$3"
  local name="np$np-$phase"
  local dir="$CAIRN_TEST_DIR/$name"
  ERRORS=()
  LOGS=()
  local start=$SECONDS
  cp -a "$CAIRN_TEST_DIR/baseline-np$np" "$dir"

  # 2. The crash, and what it leaves on disk.
  run_mpi "$dir.crash.log" "$phase:$target" "$np" mgr-save "$dir" 3
  local killed
  killed=$(sed -n "s/^cairn: fault injection: rank \([0-9]*\) kills itself at '$phase'$/\1/p" \
    "$dir.crash.log" | tr '\n' ' ')
  killed="${killed% }"
  if [[ "$RC" -eq 124 ]]; then
    fail "the crashed save hung instead of aborting"
  elif [[ "$RC" -eq 0 ]]; then
    fail "the save with CAIRN_FAULT_INJECT=$phase:$target completed: no rank was killed"
  fi
  [[ "$killed" == "$target" ]] ||
    fail "expected rank $target to kill itself at '$phase', saw: '${killed:-none}'"
  local state
  state=$(state_of "$dir")
  [[ "$state" == "latest=ckpt-2.h5 checkpoints=ckpt-1.h5,ckpt-2.h5" ]] ||
    fail "after the crash the state file says: $state"
  local tmps expect_restored expect_note
  tmps=$(find "$dir" -maxdepth 1 -name 'ckpt-*.h5.tmp-*' -printf '%f\n')
  if [[ "$phase" == before_state_file ]]; then
    [[ -e "$dir/ckpt-3.h5" ]] || fail "ckpt-3.h5 is missing although the crash came after the rename"
    [[ -z "$tmps" ]] || fail "temporary files left after the rename: $tmps"
    expect_restored=3
    expect_note="adopted 'ckpt-3.h5': committed, but newer than the state file knew (a crash between commit and state update)"
  else
    [[ ! -e "$dir/ckpt-3.h5" ]] || fail "ckpt-3.h5 exists after a crash at '$phase' (before the rename)"
    if [[ "$tmps" =~ ^ckpt-3\.h5\.tmp-[0-9-]+$ ]]; then
      expect_note="deleted '$tmps', left by a save that did not complete"
    else
      fail "expected one temporary file ckpt-3.h5.tmp-*, found: '$(echo "$tmps" | tr '\n' ' ')'"
      expect_note="deleted 'ckpt-3.h5.tmp-*', left by a save that did not complete"
    fi
    expect_restored=2
  fi

  # 3. The next job restores the newest complete checkpoint, cleans up, reports, and saves.
  run_mpi "$dir.recover.log" "" "$np" mgr-save "$dir" 4
  expect_ok "the job after the crash"
  grep -q "^crash_saver: manager restored step $expect_restored from $dir/ckpt-$expect_restored.h5 (skipped 0)$" \
    "$dir.recover.log" ||
    fail "the job after the crash did not restore step $expect_restored (exactly, nothing skipped)"
  local notes
  notes=$(notes_of "$dir.recover.log" "$dir")
  [[ "$notes" == "$expect_note" ]] ||
    fail "recovery notes: '$notes'; expected exactly: '$expect_note'"
  state=$(state_of "$dir")
  [[ "$state" == "latest=ckpt-4.h5 checkpoints=ckpt-$expect_restored.h5,ckpt-4.h5" ]] ||
    fail "after the next save the state file says: $state"
  local files want
  files=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')
  want=$(printf '%s\n' cairn-state.json "ckpt-$expect_restored.h5" ckpt-4.h5 "$STRANGER" |
    sort | tr '\n' ' ')
  [[ "$files" == "$want" ]] || fail "directory holds '$files', expected '$want'"

  # 4. Another job, on the other rank count, restores step 4 and has nothing to recover.
  local other=$((5 - np))
  run_mpi "$dir.verify.log" "" "$other" mgr-verify "$dir" 4
  expect_ok "mgr-verify of step 4 on $other ranks"
  notes=$(notes_of "$dir.verify.log" "$dir")
  [[ -z "$notes" ]] || fail "the verify job found something to recover: $notes"

  CASES=$((CASES + 1))
  local label
  label=$(printf 'np=%s %-17s kill rank %s' "$np" "$phase" "$target")
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "PASS $label: restored step $expect_restored exactly; note: ${expect_note%%,*}; saved" \
      "step 4, kept ckpt-$expect_restored+ckpt-4; step 4 verifies on $other ranks ($((SECONDS - start))s)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $label:"
    local e log
    for e in "${ERRORS[@]}"; do echo "    - $e"; done
    for log in "${LOGS[@]}"; do
      echo "    --- $log"
      sed 's/^/    | /' "$log"
    done
  fi
}

echo "manager_crash_test: kill -9 during CheckpointManager::save; $MPIEXEC, saver $SAVER"
for np in "${RANK_COUNTS[@]}"; do
  make_baseline "$np"
  last=$((np - 1))
  run_case "$np" before_data "$last"
  run_case "$np" during_data "$last"
  run_case "$np" after_data 0
  run_case "$np" before_rename 0
  run_case "$np" before_state_file 0
done
echo "manager_crash_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
