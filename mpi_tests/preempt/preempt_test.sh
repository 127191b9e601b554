#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Preemption test: a signal to a running job makes every rank save the same step and exit with the
# documented code (75, cairn::kPreemptedExitCode); the restarted job resumes at exactly that step
# and ends with the values of a run that was never interrupted.
#
#   preempt_test.sh PREEMPT_JOB      (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# For N in 2 3:
#   1. a reference run of all STEPS steps, never signalled: its digest of the final values;
#   2. a chain of runs in one checkpoint directory, each started in the background:
#        a. wait (polling the job's progress file, bounded) until the target rank is past a step,
#           then `kill -TERM` the last rank only;
#        b. the restarted job resumes there; `kill -USR1` rank 0 only;
#        c. the restarted job resumes there; `kill -USR1` mpirun, which forwards SIGUSR1 to every
#           rank (the batch-script pattern of docs/operations.md);
#      each must exit 75; every rank must report the same saved step S, at least the progress seen
#      before the signal; only the signalled rank(s) must say "signalled-here yes"; the state file
#      must name ckpt-S.h5 as the latest; the next run must report "resumed at step S" on every
#      rank;
#   3. the last run (no signal) finishes: its digest must equal the reference digest.
# Finally the 2-rank and 3-rank reference digests must agree (the digest does not depend on the
# number of ranks).
# Synchronization is by the pid and progress files the job writes, never by sleeping.
set -euo pipefail

JOB="${1:?usage: preempt_test.sh PREEMPT_JOB}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT

readonly STEPS=80 INTERVAL=7 SLEEP_MS=50
readonly LEAD=5            # steps a run must have completed before it is signalled
readonly MPI_TIMEOUT=60    # per mpirun
readonly WAIT_TIMEOUT=30   # per wait for a file
readonly POLL=0.05         # polling interval while waiting for a file (not a synchronization)
readonly RANK_COUNTS=(2 3)

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"

ERRORS=()
LOGS=()
fail() { ERRORS+=("$1"); }

# A job left running by an early exit is stopped (timeout forwards TERM to mpirun).
JOB_PID=""
cleanup() {
  if [[ -n "$JOB_PID" ]] && kill -0 "$JOB_PID" 2>/dev/null; then
    kill -TERM "$JOB_PID" 2>/dev/null || true
    wait "$JOB_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# start_job LOG CKPT_DIR RUN_DIR NP: starts the job in the background under a timeout; JOB_PID is
# the pid of `timeout`, whose child is mpirun.
start_job() {
  local log="$1" dir="$2" run_dir="$3" np="$4"
  rm -rf "$run_dir"
  LOGS+=("$log")
  timeout -k 10 "$MPI_TIMEOUT" "$MPIEXEC" -n "$np" --oversubscribe \
    "$JOB" "$dir" "$run_dir" "$STEPS" "$INTERVAL" "$SLEEP_MS" >"$log" 2>&1 &
  JOB_PID=$!
}

# finish_job: waits for the job; RC is its exit code (124 or 137: the timeout fired).
RC=0
finish_job() {
  RC=0
  wait "$JOB_PID" || RC=$?
  JOB_PID=""
}

# wait_file_int FILE MIN: waits until FILE holds an integer >= MIN while the job runs, and sets
# WAITED to it. Fails (returns 1) if the job exits first or WAIT_TIMEOUT passes.
WAITED=""
wait_file_int() {
  local file="$1" min="$2" deadline=$((SECONDS + WAIT_TIMEOUT)) value
  WAITED=""
  while true; do
    value=$(cat "$file" 2>/dev/null || true)
    if [[ "$value" =~ ^[0-9]+$ ]] && ((value >= min)); then
      WAITED=$value
      return 0
    fi
    if ! kill -0 "$JOB_PID" 2>/dev/null; then
      fail "the job exited before $(basename "$file") reached $min (it holds '${value:-nothing}')"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      fail "$(basename "$file") did not reach $min within ${WAIT_TIMEOUT}s (holds '${value:-nothing}')"
      return 1
    fi
    sleep "$POLL"
  done
}

latest_of() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["latest"])' \
    "$1/cairn-state.json" 2>/dev/null || echo "(unreadable state file)"
}

# field_values LOG PATTERN: the distinct values captured by the sed PATTERN, one per line.
field_values() { sed -n "$2" "$1" | sort -u; }
count_lines() { grep -c "$2" "$1" || true; }

# expect_common LOG NP WHAT: no HDF5 error stack and no cairn diagnostic (no recovery, no skipped
# checkpoint: nothing crashed), and no rank reported an error.
expect_common() {
  local log="$1" what="$2"
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
  # The routine log lines (saves, restores, retention, a fresh start or a resume from the latest)
  # are expected; anything else from cairn is a diagnostic.
  if grep "^cairn: " "$log" | grep -v -e "^cairn: saved '" -e "^cairn: restored '" -e "^cairn: deleted '/" \
    -e "^cairn: restore_or_initialize: resumed from '.*' (the latest checkpoint)$" \
    -e "^cairn: restore_or_initialize: no checkpoint in " | grep -q .; then
    fail "$what printed cairn diagnostics"
  fi
  if grep -q "^preempt_job: rank [0-9]*: " "$log"; then fail "$what reported an error"; fi
}

# expect_start LOG NP RESUME_STEP: every rank resumed at RESUME_STEP (0: started fresh).
expect_start() {
  local log="$1" np="$2" step="$3" n
  if [[ "$step" == 0 ]]; then
    n=$(count_lines "$log" '^preempt_job: rank [0-9]* started fresh$')
    [[ "$n" == "$np" ]] || fail "expected $np ranks to start fresh, $n did"
  else
    n=$(count_lines "$log" "^preempt_job: rank [0-9]* resumed at step $step from .*/ckpt-$step\\.h5\$")
    [[ "$n" == "$np" ]] || fail "expected $np ranks to print 'resumed at step $step', $n did"
  fi
}

# preempted_run NP DIR LABEL RESUME_STEP SIGNAL TARGET: starts a run, waits until the rank that
# will be signalled (rank 0 when TARGET is mpirun) has done LEAD steps beyond RESUME_STEP, sends
# SIGNAL to TARGET (a rank number or "mpirun") and checks the preempted exit. Sets SAVED_STEP.
SAVED_STEP=0
preempted_run() {
  local np="$1" dir="$2" label="$3" resume="$4" sig="$5" target="$6"
  local run_dir="$dir.run-$label" log="$dir.$label.log" watch=$target
  if [[ "$target" == mpirun ]]; then watch=0; fi
  SAVED_STEP=0
  start_job "$log" "$dir" "$run_dir" "$np"
  local seen="" pid="" victim=""
  if wait_file_int "$run_dir/progress.$watch" $((resume + LEAD)); then
    seen=$WAITED
    # The pid file is written before the first step, so it is there once progress is.
    pid=$(cat "$run_dir/pid.$watch")
    victim=$pid
    if [[ "$target" == mpirun ]]; then
      # The rank's parent is mpirun, itself the child of our `timeout`.
      victim=$(ps -o ppid= -p "$pid" | tr -d ' ')
      local grandparent
      grandparent=$(ps -o ppid= -p "$victim" | tr -d ' ')
      [[ "$grandparent" == "$JOB_PID" ]] ||
        fail "the parent ($victim) of rank 0 ($pid) is not the mpirun we started"
    fi
    kill "-$sig" "$victim" || fail "$label: could not send SIG$sig to $target (pid $victim)"
  fi
  finish_job
  expect_common "$log" "$label"
  expect_start "$log" "$np" "$resume"
  [[ "$RC" == 75 ]] || fail "$label: expected exit code 75 after SIG$sig to $target, got $RC"
  # Every rank saved, and all the same step.
  local n steps
  n=$(count_lines "$log" '^preempt_job: rank [0-9]* preempted-save step [0-9]* ')
  [[ "$n" == "$np" ]] || fail "$label: $n of $np ranks reported a preempted save"
  steps=$(field_values "$log" 's/^preempt_job: rank [0-9]* preempted-save step \([0-9]*\) .*/\1/p')
  if [[ "$steps" =~ ^[0-9]+$ ]]; then
    SAVED_STEP=$steps
  else
    fail "$label: the ranks saved different steps: $(echo "$steps" | tr '\n' ' ')"
  fi
  if [[ -n "$seen" ]] && ((SAVED_STEP < seen)); then
    fail "$label: saved step $SAVED_STEP, but rank $watch had completed step $seen before the signal"
  fi
  ((SAVED_STEP < STEPS)) || fail "$label: the signal came too late to interrupt the run"
  # Only the signalled rank(s) received the signal; the others saved because they agreed to.
  local here expected
  here=$(sed -n 's/^preempt_job: rank \([0-9]*\) preempted-save step [0-9]* signalled-here yes .*/\1/p' \
    "$log" | sort -n | tr '\n' ' ')
  if [[ "$target" == mpirun ]]; then expected=$(seq 0 $((np - 1)) | tr '\n' ' '); else expected="$target "; fi
  [[ "$here" == "$expected" ]] ||
    fail "$label: ranks signalled: '${here% }', expected '${expected% }'"
  local latest
  latest=$(latest_of "$dir")
  [[ "$latest" == "ckpt-$SAVED_STEP.h5" ]] ||
    fail "$label: the state file names '$latest' as the latest, expected ckpt-$SAVED_STEP.h5"
  echo "    $label: SIG$sig to $target after step $seen: all $np ranks saved step $SAVED_STEP, exit $RC"
}

# finished_run NP DIR LABEL RESUME_STEP: a run to the end; sets DIGEST.
DIGEST=""
finished_run() {
  local np="$1" dir="$2" label="$3" resume="$4"
  local log="$dir.$label.log"
  start_job "$log" "$dir" "$dir.run-$label" "$np"
  finish_job
  expect_common "$log" "$label"
  expect_start "$log" "$np" "$resume"
  [[ "$RC" == 0 ]] || fail "$label: exited $RC"
  local n digests
  n=$(count_lines "$log" "^preempt_job: rank [0-9]* finished step $STEPS digest ")
  [[ "$n" == "$np" ]] || fail "$label: $n of $np ranks finished step $STEPS"
  digests=$(field_values "$log" 's/^preempt_job: rank [0-9]* finished step [0-9]* digest \([0-9a-f]*\)$/\1/p')
  DIGEST=$digests
  [[ "$DIGEST" =~ ^[0-9a-f]{16}$ ]] || fail "$label: no single digest: $(echo "$digests" | tr '\n' ' ')"
  local latest
  latest=$(latest_of "$dir")
  [[ "$latest" == "ckpt-$STEPS.h5" ]] || fail "$label: the latest checkpoint is '$latest'"
}

FAILED=0
declare -A REFERENCE=()
echo "preempt_test: $MPIEXEC, job $JOB, $STEPS steps, save every $INTERVAL, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  ERRORS=()
  LOGS=()
  start=$SECONDS
  echo "np=$np:"
  ref="$CAIRN_TEST_DIR/np$np-reference"
  finished_run "$np" "$ref" reference 0
  REFERENCE[$np]=$DIGEST
  echo "    reference: $STEPS steps uninterrupted, digest $DIGEST"

  # The chain stops at the first run that failed: the later ones would only repeat the failure.
  dir="$CAIRN_TEST_DIR/np$np-chain"
  step=0
  for spec in "term-last-rank TERM $((np - 1))" "usr1-rank0 USR1 0" "usr1-mpirun USR1 mpirun"; do
    if [[ ${#ERRORS[@]} -eq 0 ]]; then
      read -r label sig target <<<"$spec"
      preempted_run "$np" "$dir" "$label" "$step" "$sig" "$target"
      step=$SAVED_STEP
    fi
  done
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    finished_run "$np" "$dir" final "$step"
    echo "    final: resumed at step $step, finished, digest $DIGEST"
    [[ "$DIGEST" == "${REFERENCE[$np]}" ]] ||
      fail "the interrupted chain ends with digest $DIGEST, the uninterrupted run with ${REFERENCE[$np]}"
  fi

  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "PASS np=$np ($((SECONDS - start))s)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL np=$np:"
    for e in "${ERRORS[@]}"; do echo "    - $e"; done
    for log in "${LOGS[@]}"; do
      echo "    --- $log"
      sed 's/^/    | /' "$log"
    done
  fi
done
if [[ "${REFERENCE[2]}" != "${REFERENCE[3]}" ]]; then
  echo "FAIL: the 2-rank and 3-rank reference digests differ: ${REFERENCE[2]} ${REFERENCE[3]}"
  FAILED=$((FAILED + 1))
fi
echo "preempt_test: ${SECONDS}s, $FAILED failure(s)"
[[ "$FAILED" -eq 0 ]]
