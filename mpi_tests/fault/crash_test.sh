#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real-crash test of the commit protocol: kill -9 one rank (or every rank) at each phase of a save,
# then check what a restarted job sees.
#
#   crash_test.sh CRASH_SAVER      (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# For N in 2 3, every phase of CAIRN_FAULT_INJECT, and "one rank" / "all ranks":
#   1. start from a committed step-1 checkpoint (saved once per N, copied per case);
#   2. save step 2 with CAIRN_FAULT_INJECT set: the job must die (not hang, not succeed), and the
#      fault-injection line must name the rank(s) we targeted;
#   3. the state file must still name ckpt-1.h5; ckpt-2.h5 must not exist unless the crash came
#      after the rename (before_state_file), in which case it must be a complete checkpoint.
#      Exception: when a non-zero rank dies at after_data, every rank has already agreed that the
#      data is written and rank 0 may complete the commit before mpirun aborts it; then ckpt-2.h5
#      may be the latest, and must verify as step 2;
#   4. the latest checkpoint must restore and verify on 2 and on 3 ranks (and ckpt-1.h5 too);
#   5. a normal save of the next step must then succeed, become the latest and verify.
# "One rank" is the last rank for the phases every rank passes through; before_rename and
# before_state_file are reached by rank 0 alone (it commits), so there the one rank is rank 0.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: crash_test.sh CRASH_SAVER}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT

readonly MPI_TIMEOUT=60
readonly PHASES=(before_data during_data after_data before_rename before_state_file)
readonly RANK_COUNTS=(2 3)

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
  local start=$SECONDS
  timeout -k 10 "$MPI_TIMEOUT" "${env_cmd[@]}" "$MPIEXEC" -n "$np" --oversubscribe \
    "$SAVER" "$@" >"$log" 2>&1 || RC=$?
  # A killed rank makes mpirun exit 137 too; only the clock tells a timeout (TERM or KILL) apart.
  if ((SECONDS - start >= MPI_TIMEOUT)); then RC=124; fi
}

latest_of() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["latest"])' \
    "$1/cairn-state.json" 2>/dev/null || echo "(unreadable state file)"
}

# Per-case bookkeeping: ERRORS collects what went wrong; LOGS the logs to show on failure.
ERRORS=()
LOGS=()
fail() { ERRORS+=("$1"); }

# expect_ok LOG WHAT: the last run_mpi must have exited 0 without an HDF5 error stack.
expect_ok() {
  local log="$1" what="$2"
  LOGS+=("$log")
  if [[ "$RC" -eq 124 ]]; then
    fail "$what hung (killed after ${MPI_TIMEOUT}s)"
  elif [[ "$RC" -ne 0 ]]; then
    fail "$what exited $RC"
  fi
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
}

make_baseline() {
  local np="$1" dir="$CAIRN_TEST_DIR/baseline-np$1"
  mkdir -p "$dir"
  ERRORS=()
  LOGS=()
  run_mpi "$dir.save.log" "" "$np" save "$dir" 1
  expect_ok "$dir.save.log" "baseline save of step 1"
  run_mpi "$dir.verify.log" "" "$np" verify "$dir" 1
  expect_ok "$dir.verify.log" "baseline verify of step 1"
  if [[ ${#ERRORS[@]} -gt 0 ]]; then
    echo "FATAL: cannot build the step-1 baseline on $np ranks: ${ERRORS[*]}"
    cat "${LOGS[@]}"
    exit 1
  fi
}

FAILED=0
CASES=0

run_case() {
  local np="$1" phase="$2" who="$3"
  local target inject
  case "$phase:$who" in
    before_rename:one | before_state_file:one) target=0 ;;
    *:one) target=$((np - 1)) ;;
    *:all) target=all ;;
  esac
  if [[ "$target" == all ]]; then inject="$phase"; else inject="$phase:$target"; fi
  local name="np$np-$phase-$who"
  local dir="$CAIRN_TEST_DIR/$name"
  ERRORS=()
  LOGS=()
  local start=$SECONDS
  cp -a "$CAIRN_TEST_DIR/baseline-np$np" "$dir"

  # 2. The crash.
  run_mpi "$dir.crash.log" "$inject" "$np" save "$dir" 2
  LOGS+=("$dir.crash.log")
  local killed
  killed=$(sed -n "s/^cairn: fault injection: rank \([0-9]*\) kills itself at '$phase'$/\1/p" \
    "$dir.crash.log" | sort -n | tr '\n' ' ')
  killed="${killed% }"
  if [[ "$RC" -eq 124 ]]; then
    fail "the crashed save hung instead of aborting"
  elif [[ "$RC" -eq 0 ]]; then
    fail "the save with CAIRN_FAULT_INJECT=$inject completed: no rank was killed"
  fi
  if [[ "$target" == all ]]; then
    [[ -n "$killed" ]] || fail "no rank reported a kill at '$phase'"
  elif [[ "$killed" != "$target" ]]; then
    fail "expected exactly rank $target to kill itself at '$phase', saw ranks: '${killed:-none}'"
  fi

  # 3. What a restarted job finds on disk. Once every rank has agreed that the data is written
  # (after_data), rank 0 commits on its own: if only a non-zero rank dies there, rank 0 may finish
  # the commit before mpirun aborts it. Both outcomes are crash-consistent; any other is a bug.
  local may_commit=no
  if [[ "$phase" == after_data && "$target" != all && "$target" != 0 ]]; then may_commit=yes; fi
  local latest outcome
  latest=$(latest_of "$dir")
  if [[ "$latest" == ckpt-1.h5 ]]; then
    outcome="latest still ckpt-1"
  elif [[ "$latest" == ckpt-2.h5 && "$may_commit" == yes ]]; then
    outcome="commit completed past the agreement, latest is ckpt-2"
  else
    outcome="latest is '$latest'"
    fail "state file names '$latest' as latest, expected ckpt-1.h5"
  fi
  local leftovers
  leftovers=$(find "$dir" -maxdepth 1 -name '*.tmp-*' | wc -l)
  local ckpt2=absent
  if [[ -e "$dir/ckpt-2.h5" ]]; then
    ckpt2=complete
    if [[ "$phase" != before_state_file && "$may_commit" == no ]]; then
      fail "ckpt-2.h5 exists after a crash at '$phase' (before the rename)"
    fi
    # Renamed into place: it must be a complete, committed checkpoint of step 2.
    run_mpi "$dir.verify-file2.log" "" "$np" verify-file "$dir/ckpt-2.h5" 2
    expect_ok "$dir.verify-file2.log" "verify-file of ckpt-2.h5 (renamed before the crash)"
  elif [[ "$phase" == before_state_file ]]; then
    fail "ckpt-2.h5 is missing although the crash came after the rename"
  fi

  # A leftover temporary file is trusted only if it carries the commit mark: restoring it must
  # fail before the commit step (the data phases), and give a complete step-2 checkpoint once the
  # mark is written (before_rename).
  local tmp
  while IFS= read -r tmp; do
    if [[ "$phase" == before_rename ]]; then
      run_mpi "$dir.verify-tmp.log" "" 1 verify-file "$tmp" 2
      expect_ok "$dir.verify-tmp.log" \
        "verify-file of the committed but unrenamed $(basename "$tmp")"
    else
      run_mpi "$dir.verify-tmp.log" "" 1 verify-file "$tmp" 2
      LOGS+=("$dir.verify-tmp.log")
      # Closed files lack the mark; files killed before the close lack a valid superblock.
      if [[ "$RC" -ne 1 ]] ||
        ! grep -Eq "corrupt: (not a committed cairn checkpoint|cannot open as HDF5)" \
          "$dir.verify-tmp.log"; then
        fail "restoring the uncommitted $(basename "$tmp") did not fail as corrupt/uncommitted"
      fi
    fi
  done < <(find "$dir" -maxdepth 1 -name 'ckpt-*.h5.tmp-*')

  # 4. The latest checkpoint restores and verifies, on the same and on a different number of
  # ranks; the step-1 checkpoint is intact in any case.
  local step=1
  if [[ "$latest" =~ ^ckpt-([12])\.h5$ ]]; then step="${BASH_REMATCH[1]}"; fi
  local vnp
  for vnp in 2 3; do
    run_mpi "$dir.verify$step-np$vnp.log" "" "$vnp" verify "$dir" "$step"
    expect_ok "$dir.verify$step-np$vnp.log" "restore+verify of latest (step $step) on $vnp ranks"
  done
  if [[ "$step" != 1 ]]; then
    run_mpi "$dir.verify-file1.log" "" "$np" verify-file "$dir/ckpt-1.h5" 1
    expect_ok "$dir.verify-file1.log" "verify-file of ckpt-1.h5"
  fi

  # 5. The job recovers: the next save, without the fault, commits and becomes the latest.
  local next=$((step + 1))
  run_mpi "$dir.recover.log" "" "$np" save "$dir" "$next"
  expect_ok "$dir.recover.log" "recovery save of step $next"
  run_mpi "$dir.verify-recovered.log" "" "$np" verify "$dir" "$next"
  expect_ok "$dir.verify-recovered.log" "restore+verify of step $next after recovery"
  latest=$(latest_of "$dir")
  [[ "$latest" == "ckpt-$next.h5" ]] || fail "after recovery the state file names '$latest'"

  CASES=$((CASES + 1))
  local took=$((SECONDS - start))
  local label
  label=$(printf 'np=%s %-17s kill %-7s' "$np" "$phase" \
    "$([[ "$target" == all ]] && echo all || echo "rank $target")")
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "PASS $label: killed [$killed]; $outcome, verifies on 2 and 3 ranks; ckpt-2.h5" \
      "$ckpt2; $leftovers tmp file(s) left; recovery save of step $next ok (${took}s)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $label:"
    local e
    for e in "${ERRORS[@]}"; do echo "    - $e"; done
    local log
    for log in "${LOGS[@]}"; do
      echo "    --- $log"
      sed 's/^/    | /' "$log"
    done
  fi
}

echo "crash_test: kill -9 during save; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  make_baseline "$np"
  for phase in "${PHASES[@]}"; do
    for who in one all; do
      run_case "$np" "$phase" "$who"
    done
  done
done
echo "crash_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
