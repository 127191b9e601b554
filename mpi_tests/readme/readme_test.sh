#!/usr/bin/env bash
# The README's example, taken from README.md itself, keeps its promise: built against an installed
# cairn with the README's CMakeLists.txt, started on 3 ranks, sent SIGUSR1 through mpirun once it
# has saved, it exits 75 (cairn::kPreemptedExitCode) with the signalled step saved as the latest
# checkpoint; restarted on 2 ranks it says it starts at that step, logs the restore, and finishes
# (exit 0). The user guide's manager example is extracted, built and run the same way.
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
kill -USR1 "$mpirun_pid"
rc=0
wait "$mpirun_pid" || rc=$?
((rc == 75)) || fail "the signalled run exited $rc, expected 75"
grep -q "^starting at step 0$" "$scratch/first.log" || fail "the first run did not start at step 0"
grep -q "cairn: saved '$run/ckpt-100.h5' (counter 1, 3 ranks): .* bytes .* GB/s" "$scratch/first.log" ||
  fail "no log line for the first save"
saved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latest"])' "$run/cairn-state.json")
[[ $saved =~ ^ckpt-([0-9]+)\.h5$ ]] || fail "unexpected latest checkpoint '$saved'"
step=${BASH_REMATCH[1]}
((step % 100 != 0)) || echo "readme_test: note: the signal arrived at a multiple of 100 ($step)"
ls "$run"/ckpt-*.h5 | wc -l | grep -qx '[1-3]' || fail "max_to_keep 3 not kept: $(ls "$run")"

# 2. Resumed on another rank count, to a few steps further: it starts where the signal stopped it.
target=$((step + 150))
rc=0
timeout -k 5 60 "$MPIEXEC" -n 2 --oversubscribe "$train" "$run" "$target" >"$scratch/second.log" 2>&1 || rc=$?
((rc == 0)) || fail "the resumed run exited $rc"
grep -q "^starting at step $step$" "$scratch/second.log" || fail "the resumed run did not start at step $step"
grep -q "cairn: restored '$run/ckpt-$step.h5' (counter [0-9]*, saved on 3 ranks, restored on 2): .* bytes .* GB/s" \
  "$scratch/second.log" || fail "no log line for the restore of ckpt-$step.h5"
echo "readme_test: README example: preempted at step $step (exit 75), resumed on 2 ranks to $target"

# 3. The user guide's manager example, a complete program: built the same way, run to the end,
# run again (resumes, nothing left to do), then preempted through mpirun.
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
rm -rf "$scratch/prefix" "$run" "$grun"
