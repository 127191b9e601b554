#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real-crash test of restores: kill -9 one rank (or every rank) at each phase of a restore, then
# check that the checkpoint was not touched and that a new job restores it exactly.
#
#   restore_crash_test.sh CRASH_SAVER CAIRN_CLI     (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# For N in 2 3: a directory with ckpt-1.h5 (Checkpoint.save, step 1) and ckpt-2.h5 (the latest),
# opened once by a manager (which records itself in the state file), and its snapshot (names,
# sizes, modes, SHA-256 of every file). Then for each restore phase
# (restore_before_read, restore_during_read, restore_after_read) and each of
#   one/restore   Checkpoint.restore (crash_saver verify), the last rank killed;
#   all/restore   the same, every rank killed;
#   one/manager   CheckpointManager::restore_or_initialize (crash_saver mgr-verify), rank 0 killed:
#   1. the restoring job must die (not hang, not succeed), killed by exactly the targeted rank(s);
#   2. the directory's snapshot must be unchanged: no file added, removed or changed (the restore
#      opened the checkpoint read-only and wrote nothing, not even a lock or a state file);
#   3. `cairn verify` must pass on both checkpoints, and the state file must still name ckpt-2.h5;
#   4. a new job on the other rank count (2 <-> 3) must restore step 2 exactly.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: restore_crash_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: restore_crash_test.sh CRASH_SAVER CAIRN_CLI}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
# shellcheck source=fault_lib.sh
source "$(dirname "$0")/fault_lib.sh"

readonly PHASES=(restore_before_read restore_during_read restore_after_read)
readonly RANK_COUNTS=(2 3)

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

run_case() {
  local np="$1" phase="$2" who="$3" api="$4"
  local dir="$CAIRN_TEST_DIR/ckpt-np$np" target inject verb
  case "$who" in
    all) target=all inject="$phase" ;;
    one) target=$([[ "$api" == manager ]] && echo 0 || echo $((np - 1))) inject="$phase:$target" ;;
  esac
  verb=$([[ "$api" == manager ]] && echo mgr-verify || echo verify)
  local name="np$np-$phase-$who-$api"
  begin_case

  # 1. The crash.
  INJECT="$inject" run_mpi "$CAIRN_TEST_DIR/$name.crash.log" "$np" "$verb" "$dir" 2
  local killed
  killed=$(sed -n "s/^cairn: fault injection: rank \([0-9]*\) kills itself at '$phase'$/\1/p" \
    "${LOGS[-1]}" | sort -n | tr '\n' ' ')
  killed="${killed% }"
  if [[ "$RC" -eq 124 ]]; then
    fail "the killed restore hung instead of aborting"
  elif [[ "$RC" -eq 0 ]]; then
    fail "the restore with CAIRN_FAULT_INJECT=$inject completed: no rank was killed"
  fi
  if [[ "$target" == all ]]; then
    [[ -n "$killed" ]] || fail "no rank reported a kill at '$phase'"
  elif [[ "$killed" != "$target" ]]; then
    fail "expected exactly rank $target to kill itself at '$phase', saw ranks: '${killed:-none}'"
  fi

  # 2. Not a byte changed, nothing added or removed.
  local after
  after=$(snapshot "$dir")
  if [[ "$after" != "$SNAPSHOT" ]]; then
    fail "the directory changed: $(diff <(echo "$SNAPSHOT") <(echo "$after") | tr '\n' ' ')"
  fi
  # 3. Both checkpoints verify; the latest is unchanged.
  cairn_verify "$dir/ckpt-1.h5" "$CAIRN_TEST_DIR/$name.cli1.log"
  cairn_verify "$dir/ckpt-2.h5" "$CAIRN_TEST_DIR/$name.cli2.log"
  local latest
  latest=$(latest_of "$dir")
  [[ "$latest" == ckpt-2.h5 ]] || fail "the state file names '$latest' as latest, not ckpt-2.h5"
  # 4. A new job restores it exactly, on the other rank count.
  local other=$((5 - np))
  run_mpi "$CAIRN_TEST_DIR/$name.verify.log" "$other" verify "$dir" 2
  expect_ok "restore+verify of step 2 on $other ranks after the crash"
  [[ "$(snapshot "$dir")" == "$SNAPSHOT" ]] || fail "the directory changed after the verifying job"

  local label
  label=$(printf 'np=%s %-19s kill %-6s %-7s' "$np" "$phase" \
    "$([[ "$target" == all ]] && echo all || echo "rank $target")" "$api")
  end_case "$label" "killed [$killed]; directory byte-identical; cairn verify ok on ckpt-1, ckpt-2; latest ckpt-2; restores exactly on $other ranks"
}

echo "restore_crash_test: kill -9 during restore; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  dir="$CAIRN_TEST_DIR/ckpt-np$np"
  begin_case
  run_mpi "$dir.save1.log" "$np" save "$dir" 1
  expect_ok "save of step 1"
  run_mpi "$dir.save2.log" "$np" save "$dir" 2
  expect_ok "save of step 2"
  # A manager's first open of a directory records its keep_checkpoint_every_n_hours reference
  # time in the state file (a deliberate write, not the restore's); after that, opening and
  # restoring must write nothing. So the snapshot is taken after one clean manager restore.
  run_mpi "$dir.mgr.log" "$np" mgr-verify "$dir" 2
  expect_ok "first manager restore of step 2"
  if [[ ${#ERRORS[@]} -gt 0 ]]; then
    echo "FATAL: cannot build the checkpoints on $np ranks: ${ERRORS[*]}"
    cat "${LOGS[@]}"
    exit 1
  fi
  SNAPSHOT=$(snapshot "$dir")
  for phase in "${PHASES[@]}"; do
    run_case "$np" "$phase" one restore
    run_case "$np" "$phase" all restore
    run_case "$np" "$phase" one manager
  done
done
echo "restore_crash_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
