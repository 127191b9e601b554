#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The training example end to end: interrupted-and-resumed equals uninterrupted bitwise (2 and 3
# ranks), elastic resumes (4->3, 2->4) continue the loss, and resuming on M ranks without further
# steps reproduces the saver's final digest (4->3, 4->1, 2->4).
set -euo pipefail
train=$1
scratch=${CAIRN_TEST_DIR:?}
mpiexec=${MPIEXEC:?}
export OMP_NUM_THREADS=1  # ranks are oversubscribed on 2 cores
rm -rf "$scratch"
mkdir -p "$scratch"
failures=0

run() {  # run NP ARGS...: runs the job, output to stdout; fails the test on a hang
  local np=$1
  shift
  timeout 120 "$mpiexec" -n "$np" --oversubscribe "$train" "$@"
}

field() {  # field NAME FILE: the value after "NAME " on its last line
  awk -v k="$1" '$1 == k {v = $2} END {print v}' "$2"
}

loss_at() {  # loss_at STEP FILE
  awk -v s="$1" '$1 == "step" && $2 == s && $3 == "loss" {v = $4} END {print v}' "$2"
}

check() {  # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then
    echo "PASS $what"
  else
    echo "FAIL $what"
    failures=$((failures + 1))
  fi
}

for np in 2 3; do
  d=$scratch/determinism-$np
  run "$np" --dir "$d/ref" --steps 40 --every 10 >"$d.ref.log" 2>&1 || { cat "$d.ref.log"; exit 1; }
  if run "$np" --dir "$d/run" --steps 40 --every 10 --die-rank $((np - 1)) --die-step 25 >"$d.die.log" 2>&1; then
    echo "FAIL np=$np: the job with a dying rank exited 0"; cat "$d.die.log"; exit 1
  fi
  run "$np" --dir "$d/run" --steps 40 --every 10 --resume >"$d.resume.log" 2>&1 || { cat "$d.resume.log"; exit 1; }
  ref=$(field final-digest "$d.ref.log")
  resumed=$(field final-digest "$d.resume.log")
  check "np=$np resumed at step 20 after a rank died at 25" grep -q "at step 20 on $np ranks" "$d.resume.log"
  check "np=$np interrupted+resumed digest $resumed == uninterrupted $ref" test -n "$ref" -a "$ref" = "$resumed"
done

for pair in 4:3 2:4; do
  n=${pair%:*}
  m=${pair#*:}
  d=$scratch/elastic-$n-$m
  run "$n" --dir "$d" --steps 20 --every 10 --log-every 1 >"$d.save.log" 2>&1 || { cat "$d.save.log"; exit 1; }
  run "$m" --dir "$d" --steps 30 --every 10 --log-every 1 --resume >"$d.resume.log" 2>&1 || { cat "$d.resume.log"; exit 1; }
  before=$(loss_at 20 "$d.save.log")
  after=$(loss_at 21 "$d.resume.log")
  check "elastic $n->$m resumed at step 20" grep -q "at step 20 on $m ranks" "$d.resume.log"
  check "elastic $n->$m loss continues: step 20 $before, step 21 $after (within 50%)" \
    awk -v a="$before" -v b="$after" 'BEGIN {exit !(a > 0 && b > 0.5 * a && b < 1.5 * a)}'
done

for pair in 4:3 4:1 2:4; do
  n=${pair%:*}
  m=${pair#*:}
  d=$scratch/digest-$n-$m
  run "$n" --dir "$d" --steps 20 --every 10 >"$d.save.log" 2>&1 || { cat "$d.save.log"; exit 1; }
  run "$m" --dir "$d" --steps 20 --resume >"$d.resume.log" 2>&1 || { cat "$d.resume.log"; exit 1; }
  a=$(field final-digest "$d.save.log")
  b=$(field final-digest "$d.resume.log")
  check "resume $n->$m without steps: digest $b == saver's $a" test -n "$a" -a "$a" = "$b"
done

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all training checks passed"
