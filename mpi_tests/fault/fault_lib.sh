# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the fault scripts (restore_crash_test.sh, disk_full_test.sh, readonly_test.sh,
# deleted_dir_test.sh). Sourced, not run. Needs SAVER, MPIEXEC and CAIRN_TEST_DIR.
# shellcheck shell=bash

readonly MPI_TIMEOUT=${MPI_TIMEOUT:-60}
# ctest's SKIP_RETURN_CODE for the fault scripts: a test that cannot set up its fault (no mount
# privilege) says so and skips, instead of passing without testing anything.
readonly SKIP_CODE=77

# Per-case bookkeeping: ERRORS collects what went wrong; LOGS the logs to show on failure.
ERRORS=()
LOGS=()
FAILED=0
CASES=0
fail() { ERRORS+=("$1"); }
begin_case() {
  ERRORS=()
  LOGS=()
  CASE_START=$SECONDS
}

# run_mpi LOG NP ARGS... (env: INJECT, PAUSE, PAUSE_FILE for CAIRN_FAULT_*; BG=1 to start it in
# the background, then wait_mpi): runs the saver on NP ranks under a timeout, output to LOG, and
# sets RC (124 = timed out).
RC=0
MPI_PID=
run_mpi() {
  local log="$1" np="$2"
  shift 2
  local -a env_cmd=(env -u CAIRN_FAULT_INJECT -u CAIRN_FAULT_PAUSE -u CAIRN_FAULT_PAUSE_FILE)
  [[ -z "${INJECT:-}" ]] || env_cmd+=("CAIRN_FAULT_INJECT=$INJECT")
  [[ -z "${PAUSE:-}" ]] || env_cmd+=("CAIRN_FAULT_PAUSE=$PAUSE" "CAIRN_FAULT_PAUSE_FILE=$PAUSE_FILE")
  RC=0
  LOGS+=("$log")
  MPI_START=$SECONDS
  if [[ "${BG:-0}" == 1 ]]; then
    timeout -k 10 "$MPI_TIMEOUT" "${env_cmd[@]}" "$MPIEXEC" -n "$np" --oversubscribe \
      "$SAVER" "$@" >"$log" 2>&1 &
    MPI_PID=$!
    return 0
  fi
  timeout -k 10 "$MPI_TIMEOUT" "${env_cmd[@]}" "$MPIEXEC" -n "$np" --oversubscribe \
    "$SAVER" "$@" >"$log" 2>&1 || RC=$?
  # A killed rank makes mpirun exit 137 too; only the clock tells a timeout (TERM or KILL) apart.
  if ((SECONDS - MPI_START >= MPI_TIMEOUT)); then RC=124; fi
}
wait_mpi() {
  RC=0
  wait "$MPI_PID" || RC=$?
  if ((SECONDS - MPI_START >= MPI_TIMEOUT)); then RC=124; fi
}

# expect_ok WHAT: the last run_mpi exited 0 without an HDF5 error stack.
expect_ok() {
  local log="${LOGS[-1]}" what="$1"
  if [[ "$RC" -eq 124 ]]; then
    fail "$what hung (killed after ${MPI_TIMEOUT}s)"
  elif [[ "$RC" -ne 0 ]]; then
    fail "$what exited $RC"
  fi
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
}

# expect_agreed_error WHAT NP VERB WHERE REGEX...: the last run_mpi failed cleanly (exit 1, no
# timeout, no kill, no HDF5 error stack) and every one of the NP ranks reported the same error,
# "crash_saver: rank R: VERB WHERE failed: <text>", whose first line matches every REGEX (grep -E).
# Sets ERROR_TEXT to rank 0's first line.
ERROR_TEXT=
expect_agreed_error() {
  local what="$1" np="$2" verb="$3" where="$4"
  shift 4
  local log="${LOGS[-1]}"
  ERROR_TEXT=
  if [[ "$RC" -eq 124 ]]; then
    fail "$what hung (killed after ${MPI_TIMEOUT}s)"
    return
  fi
  [[ "$RC" -eq 1 ]] || fail "$what exited $RC, expected 1 (a clean error on every rank)"
  if grep -q "HDF5-DIAG" "$log"; then fail "$what printed an HDF5 error stack"; fi
  # A message may span lines (HDF5's stack, indented by 4 spaces): each rank's record is its
  # line plus the indented lines that follow, joined with " / ".
  local -a ranks=() texts=()
  local r t
  while IFS=$'\t' read -r r t; do
    ranks+=("$r")
    texts+=("$t")
  done < <(awk -v marker=" $verb $where failed: " '
    function flush() { if (rank != "") print rank "\t" text; rank = "" }
    /^crash_saver: rank [0-9]+: / && index($0, marker) {
      flush(); rank = $3; sub(/:$/, "", rank); text = substr($0, index($0, marker) + length(marker)); next }
    /^    / && rank != "" { text = text " / " substr($0, 5); next }
    { flush() }
    END { flush() }' "$log")
  local want got
  want=$(seq -s ' ' 0 $((np - 1)))
  got=$(printf '%s\n' "${ranks[@]}" | sort -n | tr '\n' ' ')
  got=${got% }
  if [[ "$got" != "$want" ]]; then
    fail "$what: expected an error from ranks [$want], got it from [$got]"
    return
  fi
  ERROR_TEXT=${texts[0]}
  for t in "${texts[@]}"; do
    [[ "$t" == "$ERROR_TEXT" ]] || fail "$what: ranks report different errors: '$ERROR_TEXT' vs '$t'"
  done
  local re
  for re in "$@"; do
    grep -Eq -- "$re" <<<"$ERROR_TEXT" || fail "$what: the error '$ERROR_TEXT' does not match /$re/"
  done
}

latest_of() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["latest"])' \
    "$1/cairn-state.json" 2>/dev/null || echo "(no readable state file)"
}

# snapshot DIR: every file's name, size, mode and SHA-256, sorted: equal snapshots mean the
# directory was not touched (no file added, removed, or changed by a single byte).
snapshot() {
  (cd "$1" && find . -type f -printf '%p %s %m ' -exec sha256sum {} \; | awk '{print $1, $2, $3, $4}' | sort)
}

tmp_files() { find "$1" -maxdepth 1 -name '*.tmp-*' -printf '%f\n' 2>/dev/null | sort | tr '\n' ' '; }

# cairn_verify FILE: the CLI's verdict (exit 0: every piece verifies).
cairn_verify() {
  LOGS+=("$2")
  "$CAIRN_CLI" verify "$1" >"$2" 2>&1 || { fail "cairn verify $1 exited $? (see $2)"; return 0; }
}

# end_case LABEL SUMMARY: prints PASS/FAIL with the logs of a failed case.
end_case() {
  CASES=$((CASES + 1))
  local label="$1" summary="$2"
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    echo "PASS $label: $summary ($((SECONDS - CASE_START))s)"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $label:"
    local e log
    for e in "${ERRORS[@]}"; do echo "    - $e"; done
    for log in "${LOGS[@]}"; do
      echo "    --- $log"
      sed 's/^/    | /' "$log" 2>/dev/null | head -60
    done
  fi
}

# wait_for_pause FILE NP: waits (at most 30 s) until NP ranks announced "FILE.paused-<rank>".
wait_for_pause() {
  local file="$1" np="$2" i
  for ((i = 0; i < 3000; ++i)); do
    [[ $(compgen -G "$file.paused-*" | wc -l) -ge "$np" ]] && return 0
    sleep 0.01
  done
  fail "only $(compgen -G "$file.paused-*" | wc -l) of $np ranks reached the pause point"
  return 1
}

# mount_scratch_tmpfs MNT: mounts a 64 MiB tmpfs on MNT (created under the scratch directory) and
# installs an EXIT trap that always unmounts it. Without the privilege to mount, the script skips
# loudly with SKIP_CODE (ctest reports it as skipped, not passed).
SCRATCH_MOUNT=
unmount_scratch() {
  if [[ -n "$SCRATCH_MOUNT" ]] && mountpoint -q "$SCRATCH_MOUNT"; then
    umount "$SCRATCH_MOUNT" 2>/dev/null || umount -l "$SCRATCH_MOUNT"
  fi
}
mount_scratch_tmpfs() {
  SCRATCH_MOUNT="$1"
  mkdir -p "$SCRATCH_MOUNT"
  trap unmount_scratch EXIT
  local err
  if ! err=$(mount -t tmpfs -o size=64m,mode=0755 cairn-fault-test "$SCRATCH_MOUNT" 2>&1); then
    echo "SKIPPED: cannot mount a test tmpfs on $SCRATCH_MOUNT (uid $(id -u)): $err"
    echo "SKIPPED: this test needs root or CAP_SYS_ADMIN; nothing was tested"
    exit "$SKIP_CODE"
  fi
}
# remount_scratch OPTIONS: e.g. "size=2048k", "ro", "rw,size=64m".
remount_scratch() { mount -o "remount,$1" "$SCRATCH_MOUNT"; }
used_bytes() { df -B1 --output=used "$SCRATCH_MOUNT" | tail -1 | tr -d ' '; }
