#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/slurm/train-requeue.sbatch under a real Slurm (a test cluster of two slurmd on this
# machine, slurm_cluster.sh): the time-limit signal arrives mid-training, the job saves, exits
# with 75 and requeues itself; the requeued run resumes at the saved step and finishes with the
# digest of a run that was never interrupted. Then an elastic resubmit: the same directory resumed
# by a job with fewer tasks.
#
#   train_requeue_test.sh TRAIN TRAIN_REQUEUE_SBATCH   (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# Steps:
#   1. two jobs are submitted with sbatch at once, each with --time=2 --signal=B:USR1@80 and a
#      paced training (--step-ms) of at least 33 s: one launched with srun --mpi=pmix (2 nodes x 2
#      tasks), one with mpirun inside the allocation (2 nodes x 1 task);
#   2. meanwhile reference runs of the same steps, never interrupted (mpirun, 4 and 2 ranks as
#      the jobs, unpaced);
#   3. each job must end COMPLETED after at least one requeue: every run but the last got SIGUSR1,
#      saved step S (0 < S < STEPS) and exited with 75; the next run resumed at exactly S; the last
#      run finished at STEPS with the digest of the reference of its size;
#   4. elastic resubmit: each directory is resumed by a job with fewer tasks (4 -> 2 with
#      LAUNCHER=auto, 2 -> 1 with mpirun) that trains EXTRA more steps; its digest must equal that
#      of the reference of the job's size continued the same way (4 -> 2, 2 -> 1).
# Slurm signals a job's time limit from a check it makes every 30 s (PERIODIC_TIMEOUT), counted
# from slurmctld's start, and may signal up to 30 s early: with --time=2 and a lead of 80 s the
# signal comes at the first check, 30 s after the cluster started, while the jobs train. A
# requeued run still training at the next check (60 s) is signalled too and requeued again; the
# checks below hold for any number of requeues.
# Exit codes: 0 pass, 1 fail, 77 (ctest SKIP_RETURN_CODE) when the cluster cannot run (not root).
set -euo pipefail
# shellcheck source=mpi_tests/slurm/slurm_cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.sh"
slurm_cluster_enter "$@"

TRAIN=$(realpath "${1:?usage: train_requeue_test.sh TRAIN TRAIN_REQUEUE_SBATCH}")
SCRIPT=$(realpath "${2:?usage: train_requeue_test.sh TRAIN TRAIN_REQUEUE_SBATCH}")
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE

readonly STEPS=330 EVERY=30 STEP_MS=100 EXTRA=30
readonly JOB_TIMEOUT=150 MPI_TIMEOUT=120
# The two "nodes" share one kernel and one host name: Open MPI's shared-memory transport names its
# segments after the host and local rank, so ranks on cairn1 and cairn2 would collide. TCP only.
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMP_NUM_THREADS=1
# sbatch passes the environment on: the jobs log warnings only, so that a "cairn: " line in their
# output is a warning or an error (the check below), not a save's or a restore's info line.
export CAIRN_LOG=warning

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
D=$CAIRN_TEST_DIR
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

slurm_cluster_start

# submit NAME LAUNCHER NODES TASKS_PER_NODE TRAIN_ARGS [SBATCH_OPTIONS...]: prints the job id.
submit() {
  local name=$1 launcher=$2 nodes=$3 tpn=$4 args=$5
  shift 5
  CKPT_DIR=$D/$name TRAIN=$TRAIN TRAIN_ARGS=$args LAUNCHER=$launcher \
    sbatch --parsable --job-name="$name" --nodes="$nodes" --ntasks-per-node="$tpn" \
    --output="$D/$name.out" "$@" "$SCRIPT"
}

digest_of() { awk '$1 == "final-digest" {v = $2} END {print v}' "$1"; }

paced="--steps $STEPS --every $EVERY --step-ms $STEP_MS"
declare -A JOB TASKS
JOB[srun]=$(submit srun srun 2 2 "$paced" --time=2 --signal=B:USR1@80)
TASKS[srun]=4
JOB[mpirun]=$(submit mpirun mpirun 2 1 "$paced" --time=2 --signal=B:USR1@80)
TASKS[mpirun]=2
echo "submitted train-requeue.sbatch: job ${JOB[srun]} (srun, 2 nodes x 2 tasks)," \
  "job ${JOB[mpirun]} (mpirun, 2 nodes x 1 task); $STEPS steps of >= $STEP_MS ms"
squeue -o '%.6i %.9P %.8j %.2t %.8M %.6D %R'

# The references, never interrupted, on the jobs' numbers of ranks (the data a rank draws
# depends on the number of ranks, so the digests do too); in step 4 they are continued on fewer
# ranks, like the jobs' directories.
declare -A REF
for np in 4 2; do
  ref=$D/ref-$np
  timeout -k 10 "$MPI_TIMEOUT" "$MPIEXEC" -n "$np" --oversubscribe \
    "$TRAIN" --dir "$ref" --steps "$STEPS" --every "$EVERY" >"$ref.log" 2>&1 ||
    fail "the reference run on $np ranks exited $? ($(tail -n 5 "$ref.log" | tr '\n' ' '))"
  REF[$np]=$(digest_of "$ref.log")
  echo "reference: $STEPS steps uninterrupted on $np ranks, digest ${REF[$np]}"
done

# check_requeued NAME: the job's output tells the story of step 3.
check_requeued() {
  local name=$1 out=$D/$1.out id=${JOB[$1]} np=${TASKS[$1]}
  local state exit restarts
  read -r state exit restarts <<<"${SLURM_JOB_END[$id]}"
  echo "--- $name: job $id ended $state, exit code $exit, restarts $restarts; its output:"
  grep -v '^step [0-9]* loss\|^saved .*ckpt-[0-9]*\.h5:' "$out" | sed 's/^/    | /' || true
  [[ "$state" == COMPLETED && "$exit" == 0:0 ]] || fail "$name: job $id ended $state $exit"
  if grep -q 'HDF5-DIAG\|^cairn: \|^train: ' "$out"; then fail "$name: errors in the job's output"; fi
  grep -q "launcher $name\$" "$out" || fail "$name: the script did not use $name"
  # The runs in order: the saved steps of the preempted ones, and where each run started.
  local saved=() started=() line
  while IFS= read -r line; do saved+=("$line"); done < <(
    sed -n 's/^preempted: saved step \([0-9]*\), exiting with 75$/\1/p' "$out")
  while IFS= read -r line; do started+=("$line"); done < <(
    sed -n -e 's/^no checkpoint in .*: starting from step 0$/0/p' \
      -e "s|^resumed from $D/$name/ckpt-\\([0-9]*\\)\\.h5 at step \\([0-9]*\\) on $np ranks\$|\\1 \\2|p" "$out")
  local runs=$(($(grep -c "^.* job $id run [0-9]* on " "$out" || true)))
  local requeues=$(($(grep -c "checkpointed on request; requeueing job $id\$" "$out" || true)))
  local signals=$(($(grep -c 'got SIGUSR1: asking the training program' "$out" || true)))
  ((${#saved[@]} >= 1)) || fail "$name: no run was preempted (the signal did not come mid-training)"
  # Slurm signals each run of the job once; the last run may get its signal too, when it comes
  # after the last step's check: that run finishes (exit 0) and is not requeued.
  ((requeues == ${#saved[@]} && (signals == ${#saved[@]} || signals == ${#saved[@]} + 1))) ||
    fail "$name: ${#saved[@]} preempted saves, $signals signals, $requeues requeues"
  ((runs == ${#saved[@]} + 1 && ${#started[@]} == runs)) ||
    fail "$name: $runs runs, ${#started[@]} starts, ${#saved[@]} preempted saves"
  ((restarts == ${#saved[@]})) || fail "$name: Slurm counts $restarts restarts, the output ${#saved[@]}"
  [[ "${started[0]:-}" == 0 ]] || fail "$name: the first run did not start fresh"
  local i
  for i in "${!saved[@]}"; do
    ((saved[i] > 0 && saved[i] < STEPS)) || fail "$name: run $((i + 1)) saved step ${saved[i]}"
    [[ "${started[i + 1]:-}" == "${saved[i]} ${saved[i]}" ]] ||
      fail "$name: run $((i + 2)) started at '${started[i + 1]:-nothing}', not at the saved step ${saved[i]}"
    echo "requeue: $name run $((i + 1)) saved step ${saved[i]} on SIGUSR1 and exited 75;" \
      "the job requeued itself; run $((i + 2)) resumed at step ${saved[i]} on $np ranks"
  done
  grep -q "^final-step $STEPS\$" "$out" || fail "$name: the last run did not finish at step $STEPS"
  local digest want=${REF[$np]}
  digest=$(digest_of "$out")
  if [[ -n "$want" && "$digest" == "$want" ]]; then
    echo "$name: finished at step $STEPS after $restarts requeue(s), digest $digest ==" \
      "the uninterrupted $np-rank run's"
  else
    fail "$name: final digest '$digest', the uninterrupted $np-rank run's '$want'"
  fi
}
slurm_jobs_wait "$JOB_TIMEOUT" "${JOB[srun]}" "${JOB[mpirun]}" ||
  fail "the jobs did not end within ${JOB_TIMEOUT}s"
for name in srun mpirun; do check_requeued "$name"; done

# Step 4: the same directories, fewer tasks. The references of the same sizes are continued on
# the same numbers of ranks meanwhile; the elastic jobs must agree with them.
if ((failures == 0)); then
  more="--steps $((STEPS + EXTRA)) --every $EVERY"
  e1=$(submit srun auto 1 2 "$more" --time=5)
  e2=$(submit mpirun mpirun 1 1 "$more" --time=5)
  echo "elastic resubmit: job $e1 (4 -> 2 tasks, LAUNCHER=auto), job $e2 (2 -> 1 task, mpirun)"
  for spec in "4 2" "2 1"; do
    read -r from np <<<"$spec"
    ref=$D/ref-$from-to-$np
    cp -r "$D/ref-$from" "$ref"
    # shellcheck disable=SC2086 # $more is a list of options
    timeout -k 10 "$MPI_TIMEOUT" "$MPIEXEC" -n "$np" --oversubscribe \
      "$TRAIN" --dir "$ref" $more --resume >"$ref.log" 2>&1 ||
      fail "the reference continuation $from -> $np ranks exited $?"
  done
  slurm_jobs_wait "$JOB_TIMEOUT" "$e1" "$e2" || fail "the elastic jobs did not end within ${JOB_TIMEOUT}s"
  for spec in "srun $e1 4 2 srun" "mpirun $e2 2 1 mpirun"; do
    read -r name id from np launcher <<<"$spec"
    out=$D/$name.out
    before=$failures
    read -r state exit _ <<<"${SLURM_JOB_END[$id]}"
    [[ "$state" == COMPLETED && "$exit" == 0:0 ]] || fail "elastic $name: job $id ended $state $exit"
    sed -n "/ job $id run 1 on /,\$p" "$out" | grep -v '^step [0-9]* loss' | sed 's/^/    | /'
    grep -q " job $id run 1 on 1 nodes, $np tasks, launcher $launcher\$" "$out" ||
      fail "elastic $name: job $id did not run $np tasks with $launcher"
    grep -q "^resumed from $D/$name/ckpt-$STEPS\\.h5 at step $STEPS on $np ranks\$" "$out" ||
      fail "elastic $name: job $id did not resume at step $STEPS on $np ranks"
    got=$(digest_of "$out")
    want=$(digest_of "$D/ref-$from-to-$np.log")
    [[ -n "$want" && "$got" == "$want" ]] ||
      fail "elastic $name: digest after $EXTRA more steps on $np ranks '$got', the reference's '$want'"
    if ((failures == before)); then
      echo "elastic: the $from-task $name job's directory resumed at step $STEPS by $np task(s)," \
        "$EXTRA more steps, digest $got == the $from-rank reference continued on $np rank(s)"
    fi
  done
fi

if ((failures)); then
  echo "train_requeue_test: $failures failure(s) (${SECONDS}s)"
  for f in "$D"/*.out; do
    echo "--- $f"
    sed 's/^/    | /' "$f"
  done
  exit 1
fi
echo "train_requeue_test: passed (${SECONDS}s)"
