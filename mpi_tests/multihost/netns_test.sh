#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two "hosts" on one machine: two network namespaces on one bridge (netns_lib.sh), each with its
# own address and host name. Open MPI starts its daemon on the second host through netns_rsh.sh (in
# place of ssh) and the ranks talk over TCP only, so the cross-host paths (TCP BTL, OOB wire-up,
# MPI-IO from two nodes into one file) run as on a real cluster. Both hosts see the same local
# file system: the checkpoint directory is the shared storage.
#
#   netns_test.sh CRASH_SAVER RSH_AGENT     (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# Steps (each mpirun is launched inside host A, under a timeout):
#   1. save step 1 on 4 ranks, 2 per host; it must commit and verify across the hosts;
#   2. save step 2 on 2+2 ranks with CAIRN_FAULT_PAUSE=during_data:2: rank 2 (host B) stops half
#      way through its data writes, the others block in the save's collectives; then every
#      process of host B (daemon and ranks) is killed with SIGKILL: the host is gone mid-save;
#   3. the job must end by itself (no hang), with a failure exit code, and host B must be empty;
#   4. the state file must still name ckpt-1.h5, ckpt-2.h5 must not exist, and the half-written
#      temporary file must not restore (no commit mark);
#   5. a fresh job restores step 1 exactly on 3 ranks (2+1) across the hosts, and on 1 rank;
#   6. the job recovers: step 2 saved again on 2+2 ranks becomes the latest and verifies on 4.
# Exit codes: 0 pass, 1 fail, 77 (ctest SKIP_RETURN_CODE) when namespaces cannot be created.
set -euo pipefail

SAVER="${1:?usage: netns_test.sh CRASH_SAVER RSH_AGENT}"
AGENT="${2:?usage: netns_test.sh CRASH_SAVER RSH_AGENT}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
unset CAIRN_FAULT_INJECT CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE

# shellcheck source=netns_lib.sh
source "$(dirname "$0")/netns_lib.sh"
netns_require

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
readonly DIR="$CAIRN_TEST_DIR/ckpt"

netns_setup a b
readonly NS_A="${NS[a]}" NS_B="${NS[b]}" ADDR_A="${ADDR[a]}" ADDR_B="${ADDR[b]}"
readonly HOSTFILE="$CAIRN_TEST_DIR/hostfile"
netns_hostfile "$HOSTFILE" a:2 b:2
# The fault-injection variables of step 2 reach every rank (mpirun -x).
MPI_ENV=(CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE)

latest_of() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["latest"])' \
    "$DIR/cairn-state.json" 2>/dev/null || echo "(unreadable state file)"
}
# The save's temporary files, without OMPIO's shared-file-pointer lock files ("<file>-<id>.lock"),
# which a killed job also leaves behind (the manager's clean-up removes both).
partial_files() { find "$DIR" -maxdepth 1 -name 'ckpt-2.h5.tmp-*' ! -name '*.lock'; }
report_and_exit() {
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "multihost: PASS (${SECONDS}s)"
    exit 0
  fi
  echo "multihost: FAIL"
  local e log
  for e in "${ERRORS[@]}"; do echo "    - $e"; done
  for log in "${LOGS[@]}"; do
    echo "    --- $log"
    sed 's/^/    | /' "$log"
  done
  exit 1
}
echo "multihost: hosts $NS_A ($ADDR_A) and $NS_B ($ADDR_B) over a bridge; scratch $CAIRN_TEST_DIR"

# 1. A committed step 1, saved across the two hosts.
run_mpi "$CAIRN_TEST_DIR/save1.log" "$HOSTFILE" 4 save "$DIR" 1
expect_ok "the step-1 save on 2+2 ranks"
run_mpi "$CAIRN_TEST_DIR/verify1.log" "$HOSTFILE" 4 verify "$DIR" 1
expect_ok "the step-1 verify on 2+2 ranks"
[[ ${#ERRORS[@]} -eq 0 ]] || report_and_exit
echo "step 1: saved and verified on 2+2 ranks across the hosts"
LOGS=()

# 2. Host B dies in the middle of the step-2 save.
export CAIRN_FAULT_PAUSE=during_data:2 CAIRN_FAULT_PAUSE_FILE="$CAIRN_TEST_DIR/resume"
BG=1 run_mpi "$CAIRN_TEST_DIR/crash.log" "$HOSTFILE" 4 save "$DIR" 2
unset CAIRN_FAULT_PAUSE CAIRN_FAULT_PAUSE_FILE
paused=no
for _ in $(seq 1 400); do # up to 40 s for the job to start and reach the pause
  if [[ -e "$CAIRN_TEST_DIR/resume.paused-2" ]]; then
    paused=yes
    break
  fi
  kill -0 "$MPI_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ "$paused" != yes ]]; then
  fail "rank 2 never reached the pause at during_data"
  wait_mpi
  report_and_exit
fi
sleep 0.5 # let the other ranks run into the save's next collective
tmp_files=$(partial_files | wc -l)
# Proof that the job really spans the hosts: host B runs Open MPI's daemon and ranks 2 and 3.
[[ $(host_ranks b) -eq 2 ]] || fail "host B should run 2 ranks of the job; its processes: $(host_processes b)"
kill_at=$SECONDS
kill_host b
names=$KILLED
echo "step 2: killed host B (processes:$names) with rank 2 paused at during_data; $tmp_files partial file(s)"
wait_mpi
took=$((SECONDS - kill_at))

# 3. The job ended by itself, as a failure, and nothing is left on host B.
if [[ "$RC" -eq 124 ]]; then
  fail "the job hung after host B died (killed after ${MPI_TIMEOUT}s)"
elif [[ "$RC" -eq 0 ]]; then
  fail "the job exited 0 although host B died during its save"
fi
[[ "$tmp_files" -ge 1 ]] || fail "no ckpt-2.h5.tmp-* file at the kill: the save was not mid-write"
why=$(grep -m1 -E "lost communication|unable to reliably start|exited on signal|aborted" "$CAIRN_TEST_DIR/crash.log" || true)
echo "step 2: the job ended ${took}s after the kill, exit code $RC (${why:-no reason printed})"

# 4. The previous checkpoint is still the latest; the partial file is not a checkpoint.
latest=$(latest_of)
[[ "$latest" == ckpt-1.h5 ]] || fail "the state file names '$latest' as latest, expected ckpt-1.h5"
[[ ! -e "$DIR/ckpt-2.h5" ]] || fail "ckpt-2.h5 exists after a crash before the commit"
while IFS= read -r tmp; do
  run_mpi "$CAIRN_TEST_DIR/verify-tmp.log" "$HOSTFILE" 1 verify-file "$tmp" 2
  if [[ "$RC" -ne 1 ]] ||
    ! grep -Eq "corrupt: (not a committed cairn checkpoint|cannot open as HDF5)" \
      "$CAIRN_TEST_DIR/verify-tmp.log"; then
    fail "restoring the partial $(basename "$tmp") did not fail as corrupt/uncommitted"
  fi
done < <(partial_files)
echo "step 4: latest is '$latest'; partial files are refused"

# 5. A fresh job (host B "rebooted": a new daemon in the same namespace) restores step 1 exactly.
run_mpi "$CAIRN_TEST_DIR/verify1-np3.log" "$HOSTFILE" 3 verify "$DIR" 1
expect_ok "restore+verify of step 1 on 3 ranks (2+1) after the crash"
run_mpi "$CAIRN_TEST_DIR/verify1-np1.log" "$HOSTFILE" 1 verify "$DIR" 1
expect_ok "restore+verify of step 1 on 1 rank after the crash"
echo "step 5: step 1 restores exactly on 3 ranks (2+1 hosts) and on 1 rank"

# 6. The job recovers across both hosts.
run_mpi "$CAIRN_TEST_DIR/save2.log" "$HOSTFILE" 4 save "$DIR" 2
expect_ok "the recovery save of step 2 on 2+2 ranks"
run_mpi "$CAIRN_TEST_DIR/verify2.log" "$HOSTFILE" 4 verify "$DIR" 2
expect_ok "restore+verify of step 2 on 2+2 ranks"
latest=$(latest_of)
[[ "$latest" == ckpt-2.h5 ]] || fail "after recovery the state file names '$latest'"
echo "step 6: recovery save of step 2 committed and verified on 2+2 ranks"
report_and_exit
