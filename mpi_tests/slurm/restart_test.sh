#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/slurm/restart-after-failure.sbatch under a real Slurm (a test cluster of two slurmd on
# this machine, slurm_cluster.sh): one rank is killed with kill -9 mid-run; the script launches the
# step again within the allocation, the new launch resumes from the newest valid checkpoint and
# the job finishes with the digest of a run that was never interrupted.
#
#   restart_test.sh TRAIN RESTART_AFTER_FAILURE_SBATCH   (env: MPIEXEC, CAIRN_TEST_DIR; by ctest)
#
# Steps:
#   1. two jobs are submitted with sbatch at once, each a paced training (--step-ms) of STEPS
#      steps saving every EVERY: one launched with srun --mpi=pmix (2 nodes x 2 tasks), one with
#      mpirun inside the allocation (1 node x 3 tasks); RETRY_DELAY=1;
#   2. meanwhile reference runs of the same steps, never interrupted (mpirun, 4 and 3 ranks);
#   3. once a job's output shows checkpoint KILL_AFTER saved, its last rank (found by its pid in
#      /proc: the training program, its --dir, PMIX_RANK) gets SIGKILL;
#   4. each job must end COMPLETED within its allocation (no requeue): attempt 1 failed with a
#      non-zero exit code other than 75, attempt 2 resumed from the newest checkpoint (the state
#      file's latest, the last one attempt 1 reported saving), and finished at STEPS with the digest of the reference of its size.
# Exit codes: 0 pass, 1 fail, 77 (ctest SKIP_RETURN_CODE) when the cluster cannot run (not root).
set -euo pipefail
# Room for both jobs at once: 2 + 3 tasks on cairn1 (whatever the hardware: config_overrides).
export SLURM_CLUSTER_CPUS=6
# shellcheck source=mpi_tests/slurm/slurm_cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.sh"
slurm_cluster_enter "$@"

TRAIN=$(realpath "${1:?usage: restart_test.sh TRAIN RESTART_AFTER_FAILURE_SBATCH}")
SCRIPT=$(realpath "${2:?usage: restart_test.sh TRAIN RESTART_AFTER_FAILURE_SBATCH}")
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE

readonly STEPS=150 EVERY=20 STEP_MS=40 KILL_AFTER=60
readonly JOB_TIMEOUT=120 MPI_TIMEOUT=120 WAIT_TIMEOUT=60
# The two "nodes" share one kernel and one host name: Open MPI's shared-memory transport names its
# segments after the host and local rank, so ranks on cairn1 and cairn2 would collide. TCP only.
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMP_NUM_THREADS=1

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
D=$CAIRN_TEST_DIR
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
digest_of() { awk '$1 == "final-digest" {v = $2} END {print v}' "$1"; }

slurm_cluster_start

# submit NAME LAUNCHER NODES TASKS_PER_NODE: prints the job id.
submit() {
  CKPT_DIR=$D/$1 TRAIN=$TRAIN LAUNCHER=$2 RETRY_DELAY=1 \
    TRAIN_ARGS="--steps $STEPS --every $EVERY --step-ms $STEP_MS" \
    sbatch --parsable --job-name="$1" --nodes="$3" --ntasks-per-node="$4" --time=5 \
    --output="$D/$1.out" "$SCRIPT"
}
declare -A JOB TASKS
JOB[srun]=$(submit srun srun 2 2)
TASKS[srun]=4
JOB[mpirun]=$(submit mpirun mpirun 1 3)
TASKS[mpirun]=3
echo "submitted restart-after-failure.sbatch: job ${JOB[srun]} (srun, 2 nodes x 2 tasks)," \
  "job ${JOB[mpirun]} (mpirun, 1 node x 3 tasks); $STEPS steps of >= $STEP_MS ms, saving every $EVERY"

# rank_pid DIR RANK: the pid of that rank of the training program running on DIR, if any.
rank_pid() {
  local p pid env
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ "$(readlink "$p/exe" 2>/dev/null)" == "$TRAIN" ]] || continue
    tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qx -- "$1" || continue
    env=$(tr '\0' '\n' <"$p/environ" 2>/dev/null) || continue
    if grep -qx "PMIX_RANK=$2" <<<"$env"; then
      echo "$pid"
      return 0
    fi
  done
}

# kill_rank NAME: step 3 for one job, once its checkpoint KILL_AFTER is saved; 1 while it is not.
declare -A KILLED_AFTER
kill_rank() {
  local name=$1 dir=$D/$1 rank=$((TASKS[$1] - 1)) pid
  grep -q "^saved $dir/ckpt-$KILL_AFTER\\.h5:" "$D/$name.out" 2>/dev/null || return 1
  pid=$(rank_pid "$dir" "$rank")
  if [[ -z "$pid" ]]; then
    fail "$name: no process of rank $rank found"
    KILLED_AFTER[$name]=""
    return 0
  fi
  # The newest checkpoint saved before the kill; a save under way cannot commit without this rank.
  KILLED_AFTER[$name]=$(sed -n "s|^saved $dir/ckpt-\\([0-9]*\\)\\.h5:.*|\\1|p" "$D/$name.out" | tail -n 1)
  kill -KILL "$pid"
  echo "$name: kill -9 rank $rank (pid $pid) after checkpoint ${KILLED_AFTER[$name]}"
}
# Both jobs are watched at once: each rank is killed as soon as its job has saved KILL_AFTER.
deadline=$((SECONDS + WAIT_TIMEOUT))
pending=(srun mpirun)
while ((${#pending[@]})); do
  left=()
  for name in "${pending[@]}"; do kill_rank "$name" || left+=("$name"); done
  pending=("${left[@]}")
  if ((${#pending[@]})) && ((SECONDS >= deadline)); then
    fail "checkpoint $KILL_AFTER not saved within ${WAIT_TIMEOUT}s by: ${pending[*]}"
    break
  fi
  sleep 0.1
done

declare -A REF
for np in 4 3; do
  timeout -k 10 "$MPI_TIMEOUT" "$MPIEXEC" -n "$np" --oversubscribe \
    "$TRAIN" --dir "$D/ref-$np" --steps "$STEPS" --every "$EVERY" >"$D/ref-$np.log" 2>&1 ||
    fail "the reference run on $np ranks exited $?"
  REF[$np]=$(digest_of "$D/ref-$np.log")
  echo "reference: $STEPS steps uninterrupted on $np ranks, digest ${REF[$np]}"
done

slurm_jobs_wait "$JOB_TIMEOUT" "${JOB[srun]}" "${JOB[mpirun]}" ||
  fail "the jobs did not end within ${JOB_TIMEOUT}s"
for name in srun mpirun; do
  id=${JOB[$name]}
  np=${TASKS[$name]}
  out=$D/$name.out
  before=$failures
  read -r state exit restarts <<<"${SLURM_JOB_END[$id]}"
  echo "--- $name: job $id ended $state, exit code $exit, restarts $restarts; its output:"
  grep -v '^step [0-9]* loss\|^saved .*ckpt-[0-9]*\.h5:' "$out" | sed 's/^/    | /' || true
  [[ "$state" == COMPLETED && "$exit" == 0:0 && "$restarts" == 0 ]] ||
    fail "$name: job $id ended $state $exit after $restarts restarts"
  [[ -n "${KILLED_AFTER[$name]:-}" ]] || continue
  grep -q "attempt 1/3 on [0-9]* nodes, $np tasks, launcher $name;" "$out" ||
    fail "$name: no first attempt with $np tasks and $name"
  failed=$(sed -n 's/.* attempt 1 failed with exit code \([0-9]*\)$/\1/p' "$out")
  [[ "$failed" =~ ^[0-9]+$ && "$failed" != 0 && "$failed" != 75 ]] ||
    fail "$name: attempt 1 did not fail (exit code '${failed:-none}')"
  # The newest checkpoint is the last one rank 0 reported before the kill, or the next one when
  # that save committed in the instant between its commit and rank 0's report.
  k=${KILLED_AFTER[$name]}
  latest=$(sed -n 's/.* attempt 2\/3 on .*; latest checkpoint: ckpt-\([0-9]*\)\.h5$/\1/p' "$out")
  [[ "$latest" == "$k" || "$latest" == $((k + EVERY)) ]] ||
    fail "$name: the second attempt names '${latest:-nothing}' as the latest, expected ckpt-$k"
  resumed=$(sed -n "s|^resumed from $D/$name/ckpt-\\([0-9]*\\)\\.h5 at step [0-9]* on $np ranks\$|\\1|p" "$out")
  [[ -n "$resumed" && "$resumed" == "$latest" ]] ||
    fail "$name: attempt 2 resumed from '${resumed:-nothing}', not from the newest, ckpt-$latest"
  if grep -q 'HDF5-DIAG\|^train: ' "$out"; then fail "$name: errors in the job's output"; fi
  grep -q "^final-step $STEPS\$" "$out" || fail "$name: did not finish at step $STEPS"
  got=$(digest_of "$out")
  [[ -n "${REF[$np]}" && "$got" == "${REF[$np]}" ]] ||
    fail "$name: final digest '$got', the uninterrupted $np-rank run's '${REF[$np]}'"
  if ((failures == before)); then
    echo "restart: $name job $id: rank $((np - 1)) killed after checkpoint ${KILLED_AFTER[$name]}," \
      "attempt 1 exited $failed, attempt 2 resumed from ckpt-$resumed in the same allocation," \
      "finished at step $STEPS, digest $got == the uninterrupted $np-rank run's"
  fi
done

if ((failures)); then
  echo "restart_test: $failures failure(s) (${SECONDS}s)"
  for f in "$D"/*.out; do
    echo "--- $f"
    sed 's/^/    | /' "$f"
  done
  exit 1
fi
echo "restart_test: passed (${SECONDS}s)"
