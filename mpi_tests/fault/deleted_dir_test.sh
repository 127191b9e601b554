#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The checkpoint directory is deleted while a job runs: between two saves, and during a save.
# The deletion happens at a deterministic point: the ranks pause there (CAIRN_FAULT_PAUSE, see
# src/storage/fault_injection.hpp), the script deletes the directory, then lets them go on.
#
#   deleted_dir_test.sh CRASH_SAVER CAIRN_CLI     (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# For N in 1 2 3:
#   between/save     Checkpoint::save of steps 1 and 2 in one job, the directory deleted between
#                    them: the second save recreates the directory and succeeds; the new state file
#                    names only ckpt-2.h5; a new job restores step 2 exactly. Lost: ckpt-1.h5 (what
#                    the user deleted).
#   between/mgr-save CheckpointManager, the same: the save succeeds; the next manager reports
#                    "dropped 'ckpt-1.h5' from the state file: the file is gone" and restores step 2.
#   during/<phase>   Checkpoint::save and CheckpointManager::save of step 2 (step 1 saved before),
#                    the directory deleted while every rank is paused halfway through writing the
#                    data (during_data), or while rank 0 is paused after the rename, before the
#                    state file (before_state_file): the save must fail on every rank with the same
#                    error naming the checkpoint (exit 1, no hang, no crash); then a new job
#                    starts from nothing (the manager initializes), recreates the directory and
#                    saves, and that save restores exactly.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: deleted_dir_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: deleted_dir_test.sh CRASH_SAVER CAIRN_CLI}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
MPI_TIMEOUT=30  # a hang fails the case after 30 s; the whole script stays under ctest's limit
# shellcheck source=fault_lib.sh
source "$(dirname "$0")/fault_lib.sh"

readonly RANK_COUNTS=(1 2 3)

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

# paused_run LOG NP PAUSE WAIT_RANKS ARGS...: runs the saver with CAIRN_FAULT_PAUSE=PAUSE, waits
# until WAIT_RANKS ranks are paused, deletes the directory ($DIR), and resumes them.
paused_run() {
  local log="$1" np="$2" pause="$3" nwait="$4"
  shift 4
  local pause_file
  pause_file="$CAIRN_TEST_DIR/$(basename "$log" .log).resume"
  rm -f "$pause_file" "$pause_file".paused-*
  BG=1 PAUSE="$pause" PAUSE_FILE="$pause_file" run_mpi "$log" "$np" "$@"
  if wait_for_pause "$pause_file" "$nwait"; then
    rm -rf "$DIR"
    DELETED=yes
  fi
  touch "$pause_file"
  wait_mpi
}

between_case() {
  local np="$1" api="$2"
  local name="np$np-between-$api"
  DIR="$CAIRN_TEST_DIR/$name"
  local logs="$CAIRN_TEST_DIR/$name"
  begin_case
  DELETED=no
  paused_run "$logs.run.log" "$np" between_saves "$np" "$api-twice" "$DIR" 1
  expect_ok "the job whose directory was deleted between saves"
  [[ "$DELETED" == yes ]] || fail "the directory was not deleted between the saves"
  grep -q "saved step 2 to $DIR/ckpt-2.h5" "$logs.run.log" || fail "step 2 was not saved"
  [[ -e "$DIR/ckpt-1.h5" ]] && fail "ckpt-1.h5 exists, but it was deleted"
  local latest summary
  latest=$(latest_of "$DIR")
  [[ "$latest" == ckpt-2.h5 ]] || fail "latest is '$latest', not ckpt-2.h5"
  cairn_verify "$DIR/ckpt-2.h5" "$logs.cli.log"
  if [[ "$api" == save ]]; then
    local listed
    listed=$(python3 -c 'import json,sys; print(",".join(e["name"] for e in json.load(open(sys.argv[1]))["checkpoints"]))' "$DIR/cairn-state.json")
    [[ "$listed" == ckpt-2.h5 ]] || fail "the new state file lists '$listed', expected ckpt-2.h5 alone"
    run_mpi "$logs.verify.log" "$np" verify "$DIR" 2
    expect_ok "restore of step 2"
    summary="directory recreated by the 2nd save; state file lists ckpt-2 alone; restores exactly; lost: ckpt-1 (deleted)"
  else
    run_mpi "$logs.verify.log" "$np" mgr-verify "$DIR" 2
    expect_ok "the next manager's restore of step 2"
    grep -q "^cairn: $DIR: dropped 'ckpt-1.h5' from the state file: the file is gone$" \
      "$logs.verify.log" || fail "the next manager did not report the deleted ckpt-1.h5"
    summary="directory recreated by the 2nd save; next manager: \"dropped 'ckpt-1.h5' from the state file: the file is gone\", restores step 2 exactly; lost: ckpt-1 (deleted)"
  fi
  end_case "$(printf 'np=%s deleted between saves  %-8s' "$np" "$api")" "$summary"
}

during_case() {
  local np="$1" api="$2" phase="$3"
  local name="np$np-during-$api-$phase"
  DIR="$CAIRN_TEST_DIR/$name"
  local logs="$CAIRN_TEST_DIR/$name" pause nwait
  if [[ "$phase" == before_state_file ]]; then pause="$phase:0" nwait=1; else pause="$phase" nwait=$np; fi
  begin_case
  DELETED=no
  run_mpi "$logs.save1.log" "$np" "$api" "$DIR" 1
  expect_ok "the save of step 1"
  paused_run "$logs.run.log" "$np" "$pause" "$nwait" "$api" "$DIR" 2
  [[ "$DELETED" == yes ]] || fail "the directory was not deleted during the save"
  expect_agreed_error "the save whose directory was deleted" "$np" "$api" "$DIR" "ckpt-2\.h5"
  local error_text="$ERROR_TEXT" summary
  [[ ! -e "$DIR" ]] || fail "the deleted directory came back: $(find "$DIR" -mindepth 1 -printf '%f ')"
  if [[ "$api" == save ]]; then
    run_mpi "$logs.next.log" "$np" save "$DIR" 1
    expect_ok "the next job's save into the deleted directory"
    run_mpi "$logs.verify.log" "$np" verify "$DIR" 1
    expect_ok "restore of the next job's checkpoint"
    summary="every rank: \"$error_text\"; next job saves ckpt-1 anew (directory recreated), restores exactly"
  else
    run_mpi "$logs.next.log" "$np" mgr-save "$DIR" 3
    expect_ok "the next manager job"
    grep -q "^crash_saver: manager initialized$" "$logs.next.log" ||
      fail "the next manager job did not start from scratch"
    run_mpi "$logs.verify.log" "$np" mgr-verify "$DIR" 3
    expect_ok "restore of the next manager's checkpoint"
    summary="every rank: \"$error_text\"; next manager initializes, recreates the directory, saves ckpt-3, restores exactly"
  fi
  end_case "$(printf 'np=%s deleted during %-17s %-8s' "$np" "$phase" "$api")" \
    "$summary; lost: ckpt-1 and the failed ckpt-2 (deleted)"
}

echo "deleted_dir_test: checkpoint directory deleted mid-run; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  between_case "$np" save
  between_case "$np" mgr-save
  for phase in during_data before_state_file; do
    during_case "$np" save "$phase"
    during_case "$np" mgr-save "$phase"
  done
done
echo "deleted_dir_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
