# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# slurm_cluster.sh: a throw-away Slurm cluster on this machine for one test, sourced by the
# mpi_tests/slurm test scripts. Nothing of the system's Slurm or munge is used or touched: the
# munge key, the munge socket, slurm.conf, the state and spool directories, the logs and the pid
# files live in one temporary directory, the daemons listen on free ports picked at start, and the
# clients find the cluster through SLURM_CONF (exported).
#
#   source slurm_cluster.sh
#   slurm_cluster_enter "$@"     # first line of the test: skips (exit 77) or re-runs the script
#                                # as the first process of its own PID namespace
#   slurm_cluster_start          # munged, slurmctld, the slurmd(s); waits until every node is idle
#   ... sbatch, squeue, scontrol ...
#   (an EXIT trap stops everything, also when the test fails or is interrupted)
#
# Teardown: jobs are cancelled, the daemons are ended by their pids (TERM, then KILL), then every
# process left in the test's PID namespace (slurmstepd, job scripts, ranks) is killed by pid. The
# namespace is also the guarantee for a test killed with SIGKILL (ctest's time-out): unshare
# --kill-child takes the test down with it, and the kernel ends every process of a namespace whose
# first process is gone.
#
# The cluster (see slurm_cluster_write_conf): SLURM_CLUSTER_NODES node names (default 2), all on
# this host; each declares SLURM_CLUSTER_CPUS CPUs (default 4) whatever the hardware has
# (SlurmdParameters=config_overrides), so jobs of several ranks fit on a small machine;
# proctrack/linuxproc and task/none (no cgroups), no accounting, JobRequeue=1, MinJobAge=300 (with
# 10 s, a loaded CI machine polled too late and found finished jobs forgotten), scheduling every
# second, job credentials valid for 5 s (which is also the delay before a
# requeued job may start again; Slurm's default is 120 s).

SLURM_CLUSTER_SKIP=77
SLURM_CLUSTER_NODES=${SLURM_CLUSTER_NODES:-2}
SLURM_CLUSTER_CPUS=${SLURM_CLUSTER_CPUS:-4}
SLURM_CLUSTER_DIR=""
SLURM_CLUSTER_PIDS=() # daemons, in the order they are stopped
SLURM_CLUSTER_STARTED=0

slurm_cluster_log() { echo "slurm-cluster: $*"; }

# slurm_cluster_enter ARGS...: exits 77 where the cluster cannot run; otherwise re-executes the
# calling script in a new PID and mount namespace (with a private /proc), once.
slurm_cluster_enter() {
  if [[ "${CAIRN_SLURM_NAMESPACE:-}" == 1 && $$ == 1 ]]; then
    return 0
  fi
  local skip=""
  if [[ "$(id -u)" -ne 0 ]]; then
    skip="the Slurm daemons of the test cluster run as root (SlurmUser=root)"
  fi
  local cmd
  for cmd in munged slurmctld slurmd sbatch squeue sinfo scontrol scancel srun unshare ss; do
    if [[ -z "$skip" ]] && ! command -v "$cmd" >/dev/null; then
      skip="no '$cmd' command (scripts/setup installs munge, slurmctld, slurmd, slurm-client)"
    fi
  done
  if [[ -n "$skip" ]]; then
    echo "SKIP: $skip"
    exit "$SLURM_CLUSTER_SKIP"
  fi
  if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
    echo "SKIP: cannot create a PID namespace (unshare --pid)"
    exit "$SLURM_CLUSTER_SKIP"
  fi
  # A test killed with SIGKILL leaves its temporary directory (only that: its processes die with
  # its namespace). Its name holds the pid of the killed test's unshare: remove those of dead ones.
  local stale owner
  for stale in /tmp/cairn-slurm.*.*; do
    owner=${stale#/tmp/cairn-slurm.}
    owner=${owner%%.*}
    if [[ -d "$stale" && "$owner" =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then
      rm -rf "$stale"
    fi
  done
  # After exec, this pid is unshare's.
  CAIRN_SLURM_OWNER=$$ CAIRN_SLURM_NAMESPACE=1 exec unshare --pid --fork --kill-child --mount-proc \
    "$BASH" "${BASH_SOURCE[1]}" "$@"
}

# slurm_cluster_free_ports N: N consecutive TCP ports that nothing listens on or uses.
slurm_cluster_free_ports() {
  local n=$1 base p used
  for _ in $(seq 1 50); do
    base=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    used=0
    for ((p = base; p < base + n; p++)); do
      if [[ -n "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]]; then used=1; fi
    done
    if ((!used)); then
      echo "$base"
      return 0
    fi
  done
  return 1
}

slurm_cluster_node_names() {
  local i
  for ((i = 1; i <= SLURM_CLUSTER_NODES; i++)); do echo "cairn$i"; done
}

slurm_cluster_write_conf() {
  local dir=$1 ctld_port=$2 slurmd_port=$3 host
  host=$(hostname -s)
  cat >"$dir/slurm.conf" <<EOF
ClusterName=cairntest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool-%n
TmpFS=$dir/tmp-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
EOF
  local node
  for node in $(slurm_cluster_node_names); do
    echo "NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 Port=$((slurmd_port + ${node#cairn} - 1)) CPUs=$SLURM_CLUSTER_CPUS RealMemory=1000 State=UNKNOWN" >>"$dir/slurm.conf"
  done
  echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$dir/slurm.conf"
}

# slurm_cluster_start: starts the cluster and waits (at most 60 s) until every node is idle.
slurm_cluster_start() {
  trap slurm_cluster_stop EXIT
  SLURM_CLUSTER_DIR=$(mktemp -d "/tmp/cairn-slurm.${CAIRN_SLURM_OWNER:-0}.XXXXXX")
  chmod 711 "$SLURM_CLUSTER_DIR" # munged wants its socket directory searchable by all
  local dir=$SLURM_CLUSTER_DIR ports
  mkdir -p "$dir/state"
  ports=$(slurm_cluster_free_ports $((SLURM_CLUSTER_NODES + 1))) || {
    slurm_cluster_log "no free ports"
    return 1
  }
  slurm_cluster_write_conf "$dir" "$ports" $((ports + 1))
  export SLURM_CONF=$dir/slurm.conf
  # Slurm's daemons and clients (sbatch, srun, ...) take the munge socket from AuthInfo in
  # slurm.conf; munge's own tools (munge, unmunge) would need --socket, but none is used here.
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  munged --foreground --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
    --log-file="$dir/munged.log" --pid-file="$dir/munged.pid" --seed-file="$dir/munged.seed" \
    >>"$dir/munged.log" 2>&1 &
  local munged_pid=$!
  SLURM_CLUSTER_PIDS=("$munged_pid")
  local deadline=$((SECONDS + 20))
  until [[ -S "$dir/munge.socket" ]]; do
    if ! kill -0 "$munged_pid" 2>/dev/null || ((SECONDS >= deadline)); then
      slurm_cluster_log "munged did not start"
      slurm_cluster_dump_logs
      return 1
    fi
    sleep 0.1
  done
  slurmctld -D -i -f "$SLURM_CONF" >>"$dir/slurmctld.out" 2>&1 &
  SLURM_CLUSTER_PIDS=("$!" "${SLURM_CLUSTER_PIDS[@]}")
  local node
  for node in $(slurm_cluster_node_names); do
    mkdir -p "$dir/spool-$node" "$dir/tmp-$node"
    slurmd -D -N "$node" -f "$SLURM_CONF" >>"$dir/slurmd-$node.out" 2>&1 &
    SLURM_CLUSTER_PIDS=("$!" "${SLURM_CLUSTER_PIDS[@]}")
  done
  SLURM_CLUSTER_STARTED=1
  deadline=$((SECONDS + 60))
  local states want
  want=$(slurm_cluster_node_names | sed 's/$/ idle/' | sort)
  while true; do
    states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u)
    [[ "$states" == "$want" ]] && break
    if ((SECONDS >= deadline)); then
      slurm_cluster_log "the nodes did not become idle within 60 s: ${states:-no answer from sinfo}"
      slurm_cluster_dump_logs
      return 1
    fi
    local pid
    for pid in "${SLURM_CLUSTER_PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        slurm_cluster_log "a daemon (pid $pid) exited during start"
        slurm_cluster_dump_logs
        return 1
      fi
    done
    sleep 0.2
  done
  slurm_cluster_log "up: $(sinfo -h -N -o '%N %t %c' | tr '\n' ' ')(Slurm $(sinfo -V | cut -d' ' -f2)," \
    "ports $ports-$((ports + SLURM_CLUSTER_NODES)), $((SECONDS))s)"
}

slurm_cluster_dump_logs() {
  local f
  for f in "$SLURM_CLUSTER_DIR"/*.log "$SLURM_CLUSTER_DIR"/*.out; do
    # A daemon's .out (its stderr) repeats its log file; it matters when the log never opened.
    [[ -s "$f" && ! ( "$f" == *.out && -s "${f%.out}.log" ) ]] || continue
    echo "--- $(basename "$f") (last 40 lines)"
    tail -n 40 "$f" | sed 's/^/    | /'
  done
}

# slurm_cluster_wait_pids TIMEOUT PID...: waits until the processes are gone; 1 if some are not.
slurm_cluster_wait_pids() {
  local deadline=$((SECONDS + $1)) pid alive
  shift
  while true; do
    alive=0
    for pid in "$@"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# slurm_cluster_stop: the EXIT trap. Keeps the exit status of the test.
slurm_cluster_stop() {
  local rc=$?
  trap - EXIT
  if ((SLURM_CLUSTER_STARTED)); then
    timeout 10 scancel --quiet --user=root 2>/dev/null || true
    if ((rc != 0)); then slurm_cluster_dump_logs; fi
  fi
  local pid
  for pid in "${SLURM_CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  slurm_cluster_wait_pids 10 "${SLURM_CLUSTER_PIDS[@]}" ||
    for pid in "${SLURM_CLUSTER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  # What the daemons leave (slurmstepd, job scripts, ranks) is in this PID namespace: every
  # process here but this shell is the cluster's.
  local left=() all
  all=$(ps -e -o pid=) # the ps and its subshell are gone once this returns
  for pid in $all; do
    if [[ "$pid" != "$$" && "$pid" != "$BASHPID" ]] && kill -0 "$pid" 2>/dev/null; then
      left+=("$pid")
    fi
  done
  if ((${#left[@]})); then
    slurm_cluster_log "killing what is left: $(ps -o pid=,comm= -p "$(
      IFS=,
      echo "${left[*]}"
    )" | tr -s ' \n' ' ')"
    for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    slurm_cluster_wait_pids 5 "${left[@]}" || true
  fi
  [[ -z "$SLURM_CLUSTER_DIR" ]] || rm -rf "$SLURM_CLUSTER_DIR"
  exit "$rc"
}

# slurm_job_info JOBID: "STATE EXITCODE RESTARTS" of a job ("GONE - -" once Slurm forgot it).
slurm_job_info() {
  local line
  line=$(scontrol show job -o "$1" 2>/dev/null) || {
    echo "GONE - -"
    return 0
  }
  echo "$(sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p' <<<"$line")" \
    "$(sed -n 's/.* ExitCode=\([0-9:]*\) .*/\1/p' <<<"$line")" \
    "$(sed -n 's/.* Restarts=\([0-9]*\) .*/\1/p' <<<"$line")"
}

# slurm_jobs_wait TIMEOUT JOBID...: waits until the jobs have ended for good (a requeued job has
# not), watching them all at once so that none is forgotten (MinJobAge) before it is looked at;
# sets SLURM_JOB_END[JOBID] to "STATE EXITCODE RESTARTS". Returns 1 on time-out.
declare -A SLURM_JOB_END=()
slurm_jobs_wait() {
  local deadline=$((SECONDS + $1)) id info waiting
  shift
  for id in "$@"; do unset "SLURM_JOB_END[$id]"; done
  while true; do
    waiting=0
    for id in "$@"; do
      [[ -z "${SLURM_JOB_END[$id]:-}" ]] || continue
      info=$(slurm_job_info "$id")
      case "${info%% *}" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | GONE)
          SLURM_JOB_END[$id]=$info
          ;;
        *) waiting=1 ;;
      esac
    done
    ((waiting)) || return 0
    if ((SECONDS >= deadline)); then
      for id in "$@"; do
        [[ -n "${SLURM_JOB_END[$id]:-}" ]] || SLURM_JOB_END[$id]="$(slurm_job_info "$id") (still running)"
      done
      return 1
    fi
    sleep 0.5
  done
}
