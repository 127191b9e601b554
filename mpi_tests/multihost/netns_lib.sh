# SPDX-License-Identifier: Apache-2.0
# "Hosts" on one machine for the multi-host tests (netns_test.sh, multilevel_netns_test.sh):
# network namespaces, each with its own address and host name, joined by a bridge in a switch
# namespace of their own (nothing changes in the machine's own network). Open MPI starts its
# daemons on the other hosts through netns_rsh.sh (in place of ssh), ranks talk over TCP only.
# Every host sees the same local file system. Sourced, not run; needs MPIEXEC, CAIRN_TEST_DIR,
# SAVER (the MPI program) and AGENT (netns_rsh.sh).
#
#   netns_require                 skip (exit 77) without root, ip or unshare
#   netns_setup a b c ...         one host per label (a single letter): namespace NS[x], address
#                                 ADDR[x]; exports CAIRN_MH_HOSTS for netns_rsh.sh; EXIT trap
#                                 removes everything (and what a killed earlier run left)
#   netns_hostfile FILE a:2 b:2   an Open MPI hostfile: ranks fill the hosts in that order
#   run_mpi LOG HOSTFILE NP ARGS  the saver from the first host of HOSTFILE; sets RC (124: timed
#                                 out); BG=1 starts it in the background (then wait_mpi). Variables
#                                 named in MPI_ENV that are set reach every rank (mpirun -x)
#   expect_ok WHAT                the last run_mpi exited 0 without an HDF5 error stack
#   kill_host x                   kill -9 of every process of host x (Open MPI's daemon, ranks);
#                                 sets KILLED to their names; fails if any survives 5 s
# shellcheck shell=bash

readonly SKIP_CODE=77
MPI_TIMEOUT=${MPI_TIMEOUT:-60}

skip() {
  echo "SKIP: $*"
  exit "$SKIP_CODE"
}

netns_require() {
  [[ "$(id -u)" -eq 0 ]] || skip "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
  command -v ip >/dev/null || skip "no 'ip' command (Debian package iproute2)"
  command -v unshare >/dev/null || skip "no 'unshare' command (Debian package util-linux)"
}

# Names unique to this run (and short: interface names have at most 15 characters), and a /24 out
# of 10.231.0.0/16 picked from the pid, so that concurrent runs do not collide.
readonly NS_PREFIX="cairn-mh$$"
readonly SUBNET="10.231.$(($$ % 250 + 1))"
readonly NS_SWITCH="$NS_PREFIX-sw"
declare -A NS=() ADDR=()
HOST_LABELS=()

netns_cleanup() {
  local ns pids
  for ns in "${NS[@]}" "$NS_SWITCH"; do
    # Processes left in a namespace (a failed run) would keep it alive: kill them first.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one pid per word
    [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true # deleting a namespace deletes its veth ends
  done
}

# ctest's time-out is a SIGKILL, which skips the trap: remove what a killed earlier run left.
netns_clean_stale() {
  local stale owner pids
  for stale in $(ip netns list 2>/dev/null | grep -o '^cairn-mh[0-9]*-[a-z]*' || true); do
    owner=${stale#cairn-mh}
    owner=${owner%-*}
    if ! kill -0 "$owner" 2>/dev/null; then
      pids=$(ip netns pids "$stale" 2>/dev/null || true)
      # shellcheck disable=SC2086 # one pid per word
      [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
      ip netns delete "$stale" 2>/dev/null || true
    fi
  done
}

netns_setup() {
  trap netns_cleanup EXIT
  netns_clean_stale
  local err label i=0 pairs=""
  if ! err=$(ip netns add "$NS_SWITCH" 2>&1); then skip "cannot create a network namespace: $err"; fi
  ip -n "$NS_SWITCH" link add br0 type bridge
  ip -n "$NS_SWITCH" link set br0 up
  for label in "$@"; do
    i=$((i + 1))
    NS[$label]="$NS_PREFIX-$label"
    ADDR[$label]="$SUBNET.$i"
    HOST_LABELS+=("$label")
    ip netns add "${NS[$label]}"
    # One veth pair per host: its end "mh<pid><x>" in the host, "sw<pid><x>" on the bridge.
    ip -n "$NS_SWITCH" link add "sw$$$label" type veth peer name "mh$$$label" netns "${NS[$label]}"
    ip -n "$NS_SWITCH" link set "sw$$$label" master br0 up
    ip -n "${NS[$label]}" addr add "${ADDR[$label]}/24" dev "mh$$$label"
    ip -n "${NS[$label]}" link set lo up
    ip -n "${NS[$label]}" link set "mh$$$label" up
    pairs+="${pairs:+ }${ADDR[$label]}=${NS[$label]}"
  done
  export CAIRN_MH_HOSTS="$pairs"
  if command -v ping >/dev/null; then
    # The first mpirun would fail anyway, but say what is wrong first.
    local first="$1"
    for label in "${@:2}"; do
      ip netns exec "${NS[$first]}" ping -c 1 -W 5 "${ADDR[$label]}" >/dev/null 2>&1 ||
        { echo "FAIL: host $first cannot reach host $label over the bridge"; exit 1; }
    done
  fi
}

netns_hostfile() {
  local file="$1" spec
  shift
  : >"$file"
  for spec in "$@"; do printf '%s slots=%s\n' "${ADDR[${spec%%:*}]}" "${spec#*:}" >>"$file"; done
}

ERRORS=()
LOGS=()
fail() { ERRORS+=("$1"); }

RC=0
MPI_PID=
MPI_START=0
MPI_ENV=(${MPI_ENV[@]+"${MPI_ENV[@]}"})
run_mpi() {
  local log="$1" hostfile="$2" np="$3"
  shift 3
  local first var
  first=$(awk 'NR == 1 { print $1 }' "$hostfile")
  local ns=
  for var in "${HOST_LABELS[@]}"; do [[ "${ADDR[$var]}" != "$first" ]] || ns="${NS[$var]}"; done
  local -a env_args=()
  for var in ${MPI_ENV[@]+"${MPI_ENV[@]}"}; do [[ -z "${!var+set}" ]] || env_args+=(-x "$var"); done
  local -a cmd=(timeout -k 5 "$MPI_TIMEOUT" ip netns exec "$ns" unshare --uts
    sh -c 'hostname "$0" && exec "$@"' "$ns"
    "$MPIEXEC" -n "$np" --hostfile "$hostfile" --oversubscribe
    --mca plm_rsh_agent "$AGENT" --mca btl tcp,self
    --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24"
    ${env_args[@]+"${env_args[@]}"} "$SAVER" "$@")
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

# host_processes x: the names of host x's processes, counted ("2 crash_saver 1 orted").
host_processes() {
  local p
  for p in $(ip netns pids "${NS[$1]}"); do cat "/proc/$p/comm" 2>/dev/null; done |
    sort | uniq -c | tr -s ' \n' ' '
}
# host_ranks x: how many processes of host x run the saver.
host_ranks() {
  local p name
  name=$(basename "$SAVER" | cut -c1-15)
  for p in $(ip netns pids "${NS[$1]}"); do cat "/proc/$p/comm" 2>/dev/null; done | grep -cx "$name" || true
}
KILLED=
kill_host() {
  local victims left=1
  KILLED=$(host_processes "$1")
  victims=$(ip netns pids "${NS[$1]}" | tr '\n' ' ')
  # shellcheck disable=SC2086 # one pid per word
  kill -9 $victims 2>/dev/null || true # a process may already be gone
  for _ in $(seq 1 50); do # SIGKILL is asynchronous: give the kernel up to 5 s to tear them down
    left=$(ip netns pids "${NS[$1]}" | wc -l)
    [[ "$left" -gt 0 ]] || break
    sleep 0.1
  done
  [[ "$left" -eq 0 ]] || fail "$left process(es) still run in host $1 after kill -9"
}
