#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's example, taken from README.md itself, keeps its promise: built against an installed
# cairn with the README's CMakeLists.txt, started on 3 ranks, sent SIGUSR1 through mpirun once it
# has saved, it exits 75 (cairn::kPreemptedExitCode) with the signalled step saved: the step it
# prints as saved is the latest checkpoint, made after the signal, with the save counter that step
# implies. Restarted on 2 ranks it says it starts at that step, logs the restore, and finishes
# (exit 0); started again on 4 ranks and sent SIGTERM to one rank, it exits 75 again with a newer
# step saved, checked the same way. The user guide's manager example is extracted, built, run, and
# resumed.
#
#   readme_test.sh BUILD_DIR SOURCE_DIR      (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=${CAIRN_TEST_DIR:?}
: "${MPIEXEC:?}"
unset CAIRN_LOG CAIRN_TRACE CAIRN_FAULT_INJECT
extract="python3 $(dirname "$0")/extract_snippet.py"
rm -rf "$scratch"
mkdir -p "$scratch/readme" "$scratch/guide"

fail() {
  echo "readme_test: FAILED: $*" >&2
  for f in "$scratch"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }; done
  exit 1
}

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
$extract "$source_dir/README.md" Example cpp 0 "$scratch/readme/train.cpp"
$extract "$source_dir/README.md" Example cmake 0 "$scratch/readme/CMakeLists.txt"
cmake -S "$scratch/readme" -B "$scratch/readme/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$scratch/configure.log" 2>&1 || fail "configuring the README example"
cmake --build "$scratch/readme/build" >"$scratch/build.log" 2>&1 || fail "building the README example"
train=$scratch/readme/build/train
run=$scratch/run
cairn=$scratch/prefix/bin/cairn

# The step the example printed as saved when it was pre-empted (its "preempted: saved step S").
printed_saved_step() {
  local steps
  steps=$(sed -n 's/^preempted: saved step \([0-9][0-9]*\)$/\1/p' "$1")
  [[ $steps =~ ^[0-9]+$ ]] || fail "$1: expected one 'preempted: saved step S' line, found '${steps//$'\n'/ }'"
  echo "$steps"
}

# A checkpoint was saved on the signal: the printed step S is the latest checkpoint (cairn latest),
# ckpt-S.h5 did not exist before the signal was sent, and its save counter (cairn info) adds to
# that of the checkpoint the run started from (FROM_COUNTER at step FROM_STEP, a multiple of 100)
# one save per 100 steps and the one at S: ceil((S - FROM_STEP) / 100).
#   expect_saved_on_signal S LISTING_BEFORE_SIGNAL WHAT FROM_STEP FROM_COUNTER
expect_saved_on_signal() {
  local step=$1 before=$2 what=$3 from_step=$4 from_counter=$5 latest counter expected
  latest=$("$cairn" latest "$run") || fail "cairn latest $run failed after $what"
  [[ $latest == "$run/ckpt-$step.h5" ]] ||
    fail "$what printed saved step $step, but the latest checkpoint is '$latest'"
  ! grep -qx "ckpt-$step.h5" <<<"$before" ||
    fail "$what: ckpt-$step.h5 existed before the signal; nothing was saved on it"
  counter=$(save_counter "$latest")
  expected=$((from_counter + (step - from_step + 99) / 100))
  ((counter == expected)) || fail "$what: ckpt-$step.h5 has save counter $counter, expected $expected"
}

save_counter() {
  "$cairn" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["save_counter"])' ||
    fail "cairn info $1 failed"
}

# 1. Preempted: a step count it cannot reach, SIGUSR1 to mpirun once a checkpoint exists (the
# handler is installed before the restore, so it is in place by then).
"$MPIEXEC" -n 3 --oversubscribe "$train" "$run" 1000000000 >"$scratch/first.log" 2>&1 &
mpirun_pid=$!
deadline=$((SECONDS + 60))
until compgen -G "$run/ckpt-*.h5" >/dev/null; do
  kill -0 "$mpirun_pid" 2>/dev/null || fail "the first run ended before saving"
  ((SECONDS < deadline)) || { kill -KILL "$mpirun_pid"; fail "no checkpoint after 60 s"; }
  sleep 0.1
done
before_signal=$(cd "$run" && ls)
kill -USR1 "$mpirun_pid"
rc=0
wait "$mpirun_pid" || rc=$?
((rc == 75)) || fail "the signalled run exited $rc, expected 75"
grep -q "^starting at step 0$" "$scratch/first.log" || fail "the first run did not start at step 0"
grep -q "cairn: saved '$run/ckpt-100.h5' (counter 1, 3 ranks): .* bytes .* GB/s" "$scratch/first.log" ||
  fail "no log line for the first save"
step=$(printed_saved_step "$scratch/first.log")
expect_saved_on_signal "$step" "$before_signal" "the signalled run" 0 0
ls "$run"/ckpt-*.h5 | wc -l | grep -qx '[1-3]' || fail "max_to_keep 3 not kept: $(ls "$run")"

# 2. Resumed on another rank count, to a few steps further: it starts where the signal stopped it.
target=$((step + 150))
rc=0
timeout -k 5 60 "$MPIEXEC" -n 2 --oversubscribe "$train" "$run" "$target" >"$scratch/second.log" 2>&1 || rc=$?
((rc == 0)) || fail "the resumed run exited $rc"
grep -q "^starting at step $step$" "$scratch/second.log" || fail "the resumed run did not start at step $step"
grep -q "cairn: restored '$run/ckpt-$step.h5' (counter [0-9]*, saved on 3 ranks, restored on 2): .* bytes .* GB/s" \
  "$scratch/second.log" || fail "no log line for the restore of ckpt-$step.h5"

# 3. SIGTERM to one rank (Slurm's warning to a step's tasks) once the job has started training,
# from the last multiple of 100 the previous run saved.
latest_step() {
  python3 -c 'import json,re,sys; print(re.fullmatch(r"ckpt-(\d+)\.h5", json.load(open(sys.argv[1]))["latest"])[1])' \
    "$run/cairn-state.json"
}
resume=$(latest_step)
((resume == target / 100 * 100)) || fail "the resumed run's last checkpoint is step $resume, expected $((target / 100 * 100))"
resume_counter=$(save_counter "$run/ckpt-$resume.h5")
"$MPIEXEC" -n 4 --oversubscribe "$train" "$run" 1000000000 >"$scratch/third.log" 2>&1 &
mpirun_pid=$!
deadline=$((SECONDS + 60))
until grep -q "^starting at step $resume$" "$scratch/third.log"; do
  kill -0 "$mpirun_pid" 2>/dev/null || fail "the third run ended before it started training"
  ((SECONDS < deadline)) || { kill -KILL "$mpirun_pid"; fail "the third run did not start in 60 s"; }
  sleep 0.1
done
rank_pid=$(pgrep -P "$mpirun_pid" | tail -n 1)
[[ -n $rank_pid ]] || { kill -KILL "$mpirun_pid"; fail "no rank process under mpirun"; }
before_signal=$(cd "$run" && ls)
kill -TERM "$rank_pid"
rc=0
wait "$mpirun_pid" || rc=$?
((rc == 75)) || fail "the run whose rank got SIGTERM exited $rc, expected 75"
latest=$(latest_step)
((latest > resume)) || fail "after SIGTERM the latest checkpoint is step $latest, expected a step after $resume"
expect_saved_on_signal "$(printed_saved_step "$scratch/third.log")" "$before_signal" \
  "the run whose rank got SIGTERM" "$resume" "$resume_counter"
echo "readme_test: README example: preempted at step $step (exit 75), resumed on 2 ranks to $target," \
  "SIGTERM to one of 4 ranks saved step $latest (exit 75)"

# 4. The user guide's manager example, a complete program: built the same way, run to the end on
# 2 ranks, then run again on 3 (it resumes from its last checkpoint and finishes).
$extract "$source_dir/docs/user-guide.md" "Checkpoint manager and preemption" cpp 0 "$scratch/guide/guide.cpp"
sed 's/\btrain\b/guide/g' "$scratch/readme/CMakeLists.txt" >"$scratch/guide/CMakeLists.txt"
cmake -S "$scratch/guide" -B "$scratch/guide/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$scratch/configure.log" 2>&1 || fail "configuring the user guide example"
cmake --build "$scratch/guide/build" >"$scratch/build.log" 2>&1 || fail "building the user guide example"
guide=$scratch/guide/build/guide
grun=$scratch/guide-run
rc=0
timeout -k 5 60 "$MPIEXEC" -n 2 --oversubscribe "$guide" "$grun" 1200 >"$scratch/guide1.log" 2>&1 || rc=$?
((rc == 0)) || fail "the user guide example exited $rc"
compgen -G "$grun/ckpt-*.h5" >/dev/null || fail "the user guide example saved nothing"
rc=0
timeout -k 5 60 "$MPIEXEC" -n 3 --oversubscribe "$guide" "$grun" 1200 >"$scratch/guide2.log" 2>&1 || rc=$?
((rc == 0)) || fail "the resumed user guide example exited $rc"
grep -q "resumed from '$grun/ckpt-" "$scratch/guide2.log" || fail "the user guide example did not resume"
echo "readme_test: user guide example: ran, resumed on 3 ranks"

# 5. Shorter user guide snippets, compiled as written: the Session example as a program's main
# (run on one rank), the Dense module at namespace scope, the logging and CheckpointReader
# examples as function bodies.
snippets=$scratch/snippets
mkdir -p "$snippets"
guide_doc=$source_dir/docs/user-guide.md
$extract "$guide_doc" Session cpp 0 "$snippets/session.inc"
$extract "$guide_doc" "The object graph" cpp 0 "$snippets/dense.inc"
$extract "$guide_doc" Logging cpp 0 "$snippets/logging.inc"
$extract "$guide_doc" "Inspecting a checkpoint: CheckpointReader" cpp 0 "$snippets/reader.inc"
cat >"$snippets/snippets.cpp" <<'CPP'
#include <mpi.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"

#include "dense.inc"

void logging_example() {
#include "logging.inc"
}

void reader_example() {
#include "reader.inc"
}

int main(int argc, char** argv) {
#include "session.inc"
  return 0;
}
CPP
sed 's/\btrain\b/snippets/g' "$scratch/readme/CMakeLists.txt" >"$snippets/CMakeLists.txt"
cmake -S "$snippets" -B "$snippets/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  >"$scratch/configure.log" 2>&1 || fail "configuring the user guide snippets"
cmake --build "$snippets/build" >"$scratch/build.log" 2>&1 || fail "building the user guide snippets"
timeout -k 5 30 "$MPIEXEC" -n 1 "$snippets/build/snippets" || fail "the Session snippet did not run"
echo "readme_test: user guide snippets (Session, Dense, Logging, CheckpointReader) compile"
rm -rf "$scratch/prefix" "$run" "$grun"
