#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two "hosts" on one machine: two network namespaces joined by a veth pair, each with its own
# address and host name. Open MPI starts its daemon on the second host through netns_rsh.sh (in
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

readonly SKIP_CODE=77
readonly MPI_TIMEOUT=60

skip() {
  echo "SKIP: $*"
  exit "$SKIP_CODE"
}
[[ "$(id -u)" -eq 0 ]] || skip "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
command -v ip >/dev/null || skip "no 'ip' command (Debian package iproute2)"
command -v unshare >/dev/null || skip "no 'unshare' command (Debian package util-linux)"

rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
readonly DIR="$CAIRN_TEST_DIR/ckpt"

# Names unique to this run (and short: interface names have at most 15 characters), and a /24 out
# of 10.231.0.0/16 picked from the pid, so that concurrent runs do not collide.
readonly NS_A="cairn-mh$$-a" NS_B="cairn-mh$$-b"
readonly SUBNET="10.231.$(($$ % 250 + 1))"
readonly ADDR_A="$SUBNET.1" ADDR_B="$SUBNET.2"

cleanup() {
  local ns pids
  for ns in "$NS_A" "$NS_B"; do
    # Processes left in a namespace (a failed run) would keep it alive: kill them first.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true # deleting a namespace deletes its veth end
  done
  ip link delete "mh$$a" 2>/dev/null || true # in case the pair was never moved
}
trap cleanup EXIT
# ctest's time-out is a SIGKILL, which skips the trap: remove what a killed earlier run left.
for stale in $(ip netns list 2>/dev/null | grep -o '^cairn-mh[0-9]*-[ab]' || true); do
  owner=${stale#cairn-mh}
  owner=${owner%-*}
  if ! kill -0 "$owner" 2>/dev/null; then
    pids=$(ip netns pids "$stale" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one pid per word
    [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
    ip netns delete "$stale" 2>/dev/null || true
  fi
done

if ! err=$(ip netns add "$NS_A" 2>&1); then skip "cannot create a network namespace: $err"; fi
ip netns add "$NS_B"
ip link add "mh$$a" type veth peer name "mh$$b"
ip link set "mh$$a" netns "$NS_A"
ip link set "mh$$b" netns "$NS_B"
ip -n "$NS_A" addr add "$ADDR_A/24" dev "mh$$a"
ip -n "$NS_B" addr add "$ADDR_B/24" dev "mh$$b"
for ns in "$NS_A" "$NS_B"; do
  ip -n "$ns" link set lo up
done
ip -n "$NS_A" link set "mh$$a" up
ip -n "$NS_B" link set "mh$$b" up
if ! ip netns exec "$NS_A" ping -c 1 -W 5 "$ADDR_B" >/dev/null 2>&1; then
  # ping may be missing; the first mpirun would fail anyway, but say what is wrong first.
  command -v ping >/dev/null && { echo "FAIL: host A cannot reach host B over the veth pair"; exit 1; }
fi

printf '%s slots=2\n%s slots=2\n' "$ADDR_A" "$ADDR_B" >"$CAIRN_TEST_DIR/hostfile"
export CAIRN_MH_HOSTS="$ADDR_A=$NS_A $ADDR_B=$NS_B"

ERRORS=()
LOGS=()
fail() { ERRORS+=("$1"); }

# run_mpi LOG NP ARGS...: the saver on NP ranks from host A (ranks fill host A's 2 slots first),
# TCP between all ranks and for the daemons' out-of-band channel, confined to the veth subnet.
# Sets RC (124 = timed out). With BG=1 starts it in the background (then wait_mpi).
RC=0
MPI_PID=
MPI_START=0
run_mpi() {
  local log="$1" np="$2"
  shift 2
  local -a cmd=(timeout -k 5 "$MPI_TIMEOUT" ip netns exec "$NS_A" unshare --uts
    sh -c 'hostname "$0" && exec "$@"' "$NS_A"
    "$MPIEXEC" -n "$np" --hostfile "$CAIRN_TEST_DIR/hostfile" --oversubscribe
    --mca plm_rsh_agent "$AGENT" --mca btl tcp,self
    --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24"
    -x CAIRN_FAULT_PAUSE -x CAIRN_FAULT_PAUSE_FILE
    "$SAVER" "$@")
  LOGS+=("$log")
  MPI_START=$SECONDS
  RC=0
  if [[ "${BG:-0}" == 1 ]]; then
    "${cmd[@]}" >"$log" 2>&1 &
    MPI_PID=$!
    return 0
  fi
  "${cmd[@]}" >"$log" 2>&1 || RC=$?
  if ((SECONDS - MPI_START >= MPI_TIMEOUT)); then RC=124; fi
}
wait_mpi() {
  RC=0
  wait "$MPI_PID" || RC=$?
  if ((SECONDS - MPI_START >= MPI_TIMEOUT)); then RC=124; fi
}
expect_ok() {
  local what="$1" log="${LOGS[-1]}"
  if [[ "$RC" -eq 124 ]]; then
    fail "$what hung (killed after ${MPI_TIMEOUT}s)"
  elif [[ "$RC" -ne 0 ]]; then
    fail "$what exited $RC"
  fi
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
}
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
echo "multihost: hosts $NS_A ($ADDR_A) and $NS_B ($ADDR_B) over veth; scratch $CAIRN_TEST_DIR"

# 1. A committed step 1, saved across the two hosts.
run_mpi "$CAIRN_TEST_DIR/save1.log" 4 save "$DIR" 1
expect_ok "the step-1 save on 2+2 ranks"
run_mpi "$CAIRN_TEST_DIR/verify1.log" 4 verify "$DIR" 1
expect_ok "the step-1 verify on 2+2 ranks"
[[ ${#ERRORS[@]} -eq 0 ]] || report_and_exit
echo "step 1: saved and verified on 2+2 ranks across the hosts"
LOGS=()

# 2. Host B dies in the middle of the step-2 save.
export CAIRN_FAULT_PAUSE=during_data:2 CAIRN_FAULT_PAUSE_FILE="$CAIRN_TEST_DIR/resume"
BG=1 run_mpi "$CAIRN_TEST_DIR/crash.log" 4 save "$DIR" 2
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
victims=$(ip netns pids "$NS_B" | tr '\n' ' ')
# Proof that the job really spans the hosts: host B runs Open MPI's daemon and ranks 2 and 3.
names=$(for p in $victims; do cat "/proc/$p/comm" 2>/dev/null; done | sort | uniq -c | tr -s ' \n' ' ')
saver_name=$(basename "$SAVER" | cut -c1-15)
[[ $(for p in $victims; do cat "/proc/$p/comm" 2>/dev/null; done | grep -cx "$saver_name") -eq 2 ]] ||
  fail "host B should run 2 ranks of the job; its processes: $names"
kill_at=$SECONDS
# shellcheck disable=SC2086 # one pid per word
kill -9 $victims 2>/dev/null || true # a process may already be gone
echo "step 2: killed host B (processes:$names) with rank 2 paused at during_data; $tmp_files partial file(s)"
wait_mpi
took=$((SECONDS - kill_at))

# 3. The job ended by itself, as a failure, and nothing is left on host B.
if [[ "$RC" -eq 124 ]]; then
  fail "the job hung after host B died (killed after ${MPI_TIMEOUT}s)"
elif [[ "$RC" -eq 0 ]]; then
  fail "the job exited 0 although host B died during its save"
fi
left=1
for _ in $(seq 1 50); do # SIGKILL is asynchronous: give the kernel up to 5 s to tear them down
  left=$(ip netns pids "$NS_B" | wc -l)
  [[ "$left" -gt 0 ]] || break
  sleep 0.1
done
[[ "$left" -eq 0 ]] || fail "$left process(es) still run in host B after kill -9"
[[ "$tmp_files" -ge 1 ]] || fail "no ckpt-2.h5.tmp-* file at the kill: the save was not mid-write"
why=$(grep -m1 -E "lost communication|unable to reliably start|exited on signal|aborted" "$CAIRN_TEST_DIR/crash.log" || true)
echo "step 2: the job ended ${took}s after the kill, exit code $RC (${why:-no reason printed})"

# 4. The previous checkpoint is still the latest; the partial file is not a checkpoint.
latest=$(latest_of)
[[ "$latest" == ckpt-1.h5 ]] || fail "the state file names '$latest' as latest, expected ckpt-1.h5"
[[ ! -e "$DIR/ckpt-2.h5" ]] || fail "ckpt-2.h5 exists after a crash before the commit"
while IFS= read -r tmp; do
  run_mpi "$CAIRN_TEST_DIR/verify-tmp.log" 1 verify-file "$tmp" 2
  if [[ "$RC" -ne 1 ]] ||
    ! grep -Eq "corrupt: (not a committed cairn checkpoint|cannot open as HDF5)" \
      "$CAIRN_TEST_DIR/verify-tmp.log"; then
    fail "restoring the partial $(basename "$tmp") did not fail as corrupt/uncommitted"
  fi
done < <(partial_files)
echo "step 4: latest is '$latest'; partial files are refused"

# 5. A fresh job (host B "rebooted": a new daemon in the same namespace) restores step 1 exactly.
run_mpi "$CAIRN_TEST_DIR/verify1-np3.log" 3 verify "$DIR" 1
expect_ok "restore+verify of step 1 on 3 ranks (2+1) after the crash"
run_mpi "$CAIRN_TEST_DIR/verify1-np1.log" 1 verify "$DIR" 1
expect_ok "restore+verify of step 1 on 1 rank after the crash"
echo "step 5: step 1 restores exactly on 3 ranks (2+1 hosts) and on 1 rank"

# 6. The job recovers across both hosts.
run_mpi "$CAIRN_TEST_DIR/save2.log" 4 save "$DIR" 2
expect_ok "the recovery save of step 2 on 2+2 ranks"
run_mpi "$CAIRN_TEST_DIR/verify2.log" 4 verify "$DIR" 2
expect_ok "restore+verify of step 2 on 2+2 ranks"
latest=$(latest_of)
[[ "$latest" == ckpt-2.h5 ]] || fail "after recovery the state file names '$latest'"
echo "step 6: recovery save of step 2 committed and verified on 2+2 ranks"
report_and_exit
