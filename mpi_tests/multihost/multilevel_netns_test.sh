#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Multi-level checkpointing across "hosts" (network namespaces on one bridge, netns_lib.sh): each
# node keeps its node-local files in <scratch>/<case>/local/node-<k> (the manager's layout under
# CAIRN_NODE_LOCAL_DIR), and a host that dies takes that directory with it: the script kills every
# process of the host (Open MPI's daemon and its ranks, kill -9) and wipes its node's directory.
# The shared directory (level 3) is <scratch>/<case>/shared. crash_saver's mgr-* verbs run a
# CheckpointManager that the CAIRN_* variables turn multi-level, and print which level served
# each rank (RestoreOutcome::level) and the rebuilt nodes.
#
#   multilevel_netns_test.sh CRASH_SAVER RSH_AGENT     (env: MPIEXEC, CAIRN_TEST_DIR; by ctest)
#
# Partner (hosts A, B, then A, C; 2 ranks each, nodes 0 and 1; CAIRN_REDUNDANCY=partner):
#   1. step 1 saved on A+B, also drained to the shared directory (CAIRN_SHARED_EVERY=1);
#   2. a job on A+B restores step 1, saves step 2 with CAIRN_SHARED_EVERY=0 (node-local and its
#      partner copy only) and pauses; host B is killed, its node-local directory wiped;
#   3. the state file still names ckpt-1.h5 as the shared latest; no shared ckpt-2.h5 exists, so
#      the only copy of step 2 off host A is B's partner copy on A;
#   4. a fresh job on A plus a new host C restores step 2 exactly: ranks 0-1 from their node-local
#      part, ranks 2-3 from the "partner copy", node 1 rebuilt (its part is back on disk).
# XOR (1 rank per host, groups of 3 nodes; CAIRN_REDUNDANCY=xor:3, CAIRN_SHARED_EVERY=1):
#   5. step 1 saved on A, C, D (nodes 0, 1, 2) and drained; the job pauses; D is killed and wiped;
#   6. a job on A, C and a new host E restores step 1 exactly, node 2 from "xor parity";
#   7. that job saves step 2 (drained: the shared latest is ckpt-2.h5) and pauses; C and E (two
#      nodes of the one XOR group) are killed and wiped;
#   8. a job on A and the new hosts B, D restores step 2 exactly from the "shared file" on every
#      rank, the node-local copy skipped with a reason naming both lost nodes.
# Exit codes: 0 pass, 1 fail, 77 (ctest SKIP_RETURN_CODE) when namespaces cannot be created.
set -euo pipefail

SAVER="${1:?usage: multilevel_netns_test.sh CRASH_SAVER RSH_AGENT}"
AGENT="${2:?usage: multilevel_netns_test.sh CRASH_SAVER RSH_AGENT}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE CAIRN_NODE_LOCAL_DIR \
  CAIRN_REDUNDANCY CAIRN_SHARED_EVERY CAIRN_KEEP_NODE_LOCAL CAIRN_RANK_PER_NODE
MPI_TIMEOUT=40
# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
netns_require
MPI_ENV=(CAIRN_NODE_LOCAL_DIR CAIRN_REDUNDANCY CAIRN_SHARED_EVERY CAIRN_FAULT_PAUSE
  CAIRN_FAULT_PAUSE_FILE)

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
netns_setup a b c d e

state_field() { # state_field DIR KEY: the shared directory's state file, summarized
  python3 -c '
import json, sys
s = json.load(open(sys.argv[1] + "/cairn-state.json"))
if sys.argv[2] == "latest":
    print(s["latest"])
else:
    print(" ".join("%s:%s" % (e["name"], "shared" if e.get("shared", True) else "local")
                   for e in s["checkpoints"]))
' "$1" "$2" 2>/dev/null || echo "(unreadable state file)"
}

report_and_exit() {
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "multilevel_netns: PASS (${SECONDS}s)"
    exit 0
  fi
  echo "multilevel_netns: FAIL"
  local e log
  for e in "${ERRORS[@]}"; do echo "    - $e"; done
  for log in "${LOGS[@]}"; do
    echo "    --- $log"
    sed 's/^/    | /' "$log" | head -80
  done
  exit 1
}
checkpoint() { [[ ${#ERRORS[@]} -eq 0 ]] || report_and_exit; }

# expect_levels LOG STEP LEVEL...: rank r restored STEP at the r-th LEVEL.
expect_levels() {
  local log="$1" step="$2" r=0 level
  shift 2
  for level in "$@"; do
    grep -q "^crash_saver: rank $r restored step $step at level '$level' from " "$log" ||
      fail "rank $r did not restore step $step from the $level: $(grep "^crash_saver: rank $r restored" "$log" || echo 'no line')"
    r=$((r + 1))
  done
}

# pause_and_kill WHAT NP RESUME SHARED STEP HOST...: waits for the background job's NP ranks to
# pause between saves, and (SHARED non-empty) for the shared directory to name ckpt-STEP.h5 as
# latest (its drain committed); kills the hosts, then the job must end by itself, as a failure.
pause_and_kill() {
  local what="$1" np="$2" resume="$3" shared="$4" step="$5" host i
  shift 5
  for ((i = 0; i < 300; ++i)); do # 30 s for the job to start, save and drain
    if [[ $(compgen -G "$resume.paused-*" | wc -l) -ge "$np" ]] &&
      { [[ -z "$shared" ]] || [[ "$(state_field "$shared" latest)" == "ckpt-$step.h5" ]]; }; then
      break
    fi
    kill -0 "$MPI_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ((i == 300)) || ! kill -0 "$MPI_PID" 2>/dev/null; then
    fail "$what: the job did not reach its pause ($(compgen -G "$resume.paused-*" | wc -l) of $np ranks${shared:+, shared latest: $(state_field "$shared" latest)})"
    wait_mpi
    report_and_exit
  fi
  local killed=""
  for host in "$@"; do
    [[ $(host_ranks "$host") -ge 1 ]] || fail "host $host runs no rank of the job: $(host_processes "$host")"
    kill_host "$host"
    killed+=" $host:[$KILLED]"
  done
  local kill_at=$SECONDS
  wait_mpi
  if [[ "$RC" -eq 124 ]]; then
    fail "$what: the job hung after the kill (killed after ${MPI_TIMEOUT}s)"
  elif [[ "$RC" -eq 0 ]]; then
    fail "$what: the job exited 0 although its hosts died"
  fi
  echo "    killed$killed; the job ended $((SECONDS - kill_at))s later, exit code $RC"
}

echo "multilevel_netns: hosts a-e (${ADDR[a]}-${ADDR[e]}) on a bridge; scratch $CAIRN_TEST_DIR"

# --- Partner: 2+2 ranks, host B lost, rebuilt on host C from the partner copy ---------------------
P="$CAIRN_TEST_DIR/partner"
mkdir -p "$P"
netns_hostfile "$P/hosts-ab" a:2 b:2
netns_hostfile "$P/hosts-ac" a:2 c:2
export CAIRN_NODE_LOCAL_DIR="$P/local" CAIRN_REDUNDANCY=partner CAIRN_SHARED_EVERY=1
run_mpi "$P/save1.log" "$P/hosts-ab" 4 mgr-save "$P/shared" 1
expect_ok "partner: the step-1 save on A+B"
[[ -e "$P/shared/ckpt-1.h5" ]] || fail "partner: step 1 was not drained to the shared directory"
checkpoint
echo "partner 1: step 1 saved on A+B (2+2 ranks, node-local, partner copy, drained)"

export CAIRN_SHARED_EVERY=0 CAIRN_FAULT_PAUSE=between_saves CAIRN_FAULT_PAUSE_FILE="$P/resume"
BG=1 run_mpi "$P/crash.log" "$P/hosts-ab" 4 mgr-save-twice "$P/shared" 2
unset CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE
pause_and_kill "partner: the step-2 job" 4 "$P/resume" "" 2 b
grep -q "^crash_saver: manager saved step 2 to $P/local/node-0/ckpt-2.h5" "$P/crash.log" ||
  fail "partner: the paused job did not save step 2 node-local"
rm -rf "$P/local/node-1"
echo "partner 2: step 2 saved node-local only, host B killed at the pause, node-1 wiped"

latest=$(state_field "$P/shared" latest)
[[ "$latest" == ckpt-1.h5 ]] || fail "partner: the shared latest is '$latest', expected ckpt-1.h5"
[[ ! -e "$P/shared/ckpt-2.h5" ]] || fail "partner: a shared ckpt-2.h5 exists (CAIRN_SHARED_EVERY=0)"
[[ -z "$(find "$P/shared" -name 'ckpt-2.h5*')" ]] || fail "partner: files of ckpt-2 in the shared directory"
[[ "$(state_field "$P/shared" entries)" == "ckpt-1.h5:shared ckpt-2.h5:local" ]] ||
  fail "partner: state file entries: $(state_field "$P/shared" entries)"
checkpoint
echo "partner 3: shared latest ckpt-1.h5, no shared copy of step 2"

run_mpi "$P/restore.log" "$P/hosts-ac" 4 mgr-verify "$P/shared" 2
expect_ok "partner: the restore of step 2 on A+C"
expect_levels "$P/restore.log" 2 node-local node-local "partner copy" "partner copy"
grep -q "^crash_saver: rebuilt nodes: 1$" "$P/restore.log" || fail "partner: node 1 not reported rebuilt"
grep -q "(skipped 0)$" "$P/restore.log" || fail "partner: a checkpoint was skipped"
[[ -e "$P/local/node-1/ckpt-2.h5" ]] || fail "partner: node 1's part of step 2 is not back on disk"
checkpoint
echo "partner 4: step 2 restored exactly on A+C; ranks 2-3 from the partner copy, node 1 rebuilt"

# --- XOR over 3 hosts (1 rank each): one lost host rebuilt, two lost fall back to the shared file --
X="$CAIRN_TEST_DIR/xor"
mkdir -p "$X"
netns_hostfile "$X/hosts-acd" a:1 c:1 d:1
netns_hostfile "$X/hosts-ace" a:1 c:1 e:1
netns_hostfile "$X/hosts-abd" a:1 b:1 d:1
export CAIRN_NODE_LOCAL_DIR="$X/local" CAIRN_REDUNDANCY=xor:3 CAIRN_SHARED_EVERY=1
export CAIRN_FAULT_PAUSE=between_saves CAIRN_FAULT_PAUSE_FILE="$X/resume1"
BG=1 run_mpi "$X/crash1.log" "$X/hosts-acd" 3 mgr-save-twice "$X/shared" 1
pause_and_kill "xor: the step-1 job" 3 "$X/resume1" "$X/shared" 1 d
rm -rf "$X/local/node-2"
checkpoint
echo "xor 5: step 1 saved on A, C, D (node-local, XOR parity, drained); host D killed, node-2 wiped"

export CAIRN_FAULT_PAUSE_FILE="$X/resume2"
BG=1 run_mpi "$X/crash2.log" "$X/hosts-ace" 3 mgr-save-twice "$X/shared" 2
pause_and_kill "xor: the step-2 job" 3 "$X/resume2" "$X/shared" 2 c e
unset CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE
expect_levels "$X/crash2.log" 1 node-local node-local "xor parity"
grep -q "^crash_saver: rebuilt nodes: 2$" "$X/crash2.log" || fail "xor: node 2 not reported rebuilt"
grep -q "^crash_saver: manager restored step 1 from .*(skipped 0)$" "$X/crash2.log" ||
  fail "xor: the step-1 restore on A, C, E was not exact or skipped a checkpoint"
rm -rf "$X/local/node-1" "$X/local/node-2"
checkpoint
echo "xor 6-7: step 1 restored exactly on A, C, E (node 2 from xor parity); step 2 saved and" \
  "drained; hosts C and E killed, node-1 and node-2 wiped"

run_mpi "$X/restore.log" "$X/hosts-abd" 3 mgr-verify "$X/shared" 2
expect_ok "xor: the restore of step 2 on A, B, D"
expect_levels "$X/restore.log" 2 "shared file" "shared file" "shared file"
grep -q "^crash_saver: manager restored step 2 from $X/shared/ckpt-2.h5 (skipped 1)$" "$X/restore.log" ||
  fail "xor: step 2 was not restored from the shared file after skipping the node-local copy"
why=$(grep -m1 "^crash_saver: skipped $X/local/node-0/ckpt-2.h5: " "$X/restore.log" || true)
[[ "$why" =~ "node 1 lost its file, and so did node 2" && "$why" =~ "node 2 lost its file, and so did node 1" ]] ||
  fail "xor: the skipped node-local copy's reason does not name nodes 1 and 2: '${why:-none}'"
grep -q "^cairn: node-local copy of 'ckpt-2.h5' cannot be used: .*node 1 lost its file" "$X/restore.log" ||
  fail "xor: the manager did not log why the node-local copy could not be used"
checkpoint
echo "xor 8: step 2 restored exactly from the shared file on A, B, D: ${why#crash_saver: skipped }"
report_and_exit
