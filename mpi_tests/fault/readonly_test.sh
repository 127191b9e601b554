#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Read-only target: saves into a directory whose file system is mounted read-only. (chmod 0555
# does not stop root, so the test remounts its own tmpfs with -o remount,ro.)
#
#   readonly_test.sh CRASH_SAVER CAIRN_CLI     (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# Mounts a tmpfs under the scratch directory (always unmounted by an EXIT trap; without the
# privilege to mount, it skips with exit code 77). For each API (Checkpoint::save, save_async,
# CheckpointManager::save, save_async) and N in 1 2 3, in a fresh directory:
#   1. the good save of step 1 must succeed; then the file system is remounted read-only;
#   2. the save of step 2 must fail on every rank with the same error, naming ckpt-2.h5 and
#      saying "Read-only file system", and exit cleanly (exit 1, under the timeout);
#   3. the directory must be byte-identical (latest still ckpt-1.h5); `cairn verify` passes on
#      it, and a new job restores step 1 exactly, from the read-only file system;
#   4. remounted read-write, the same save of step 2 works.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: readonly_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: readonly_test.sh CRASH_SAVER CAIRN_CLI}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
MPI_TIMEOUT=30  # a hang fails the case after 30 s; the whole script stays under ctest's limit
# shellcheck source=fault_lib.sh
source "$(dirname "$0")/fault_lib.sh"

readonly APIS=(save save-async mgr-save mgr-save-async)
readonly RANK_COUNTS=(1 2 3)

if mountpoint -q "$CAIRN_TEST_DIR/mnt" 2>/dev/null; then umount -l "$CAIRN_TEST_DIR/mnt"; fi
rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
mount_scratch_tmpfs "$CAIRN_TEST_DIR/mnt"

run_case() {
  local np="$1" api="$2"
  local name="np$np-$api" verify=verify
  [[ "$api" == mgr-* ]] && verify=mgr-verify
  local dir="$SCRATCH_MOUNT/$name" logs="$CAIRN_TEST_DIR/$name"
  begin_case
  remount_scratch rw

  run_mpi "$logs.save1.log" "$np" "$api" "$dir" 1
  expect_ok "the good save of step 1"
  local before
  before=$(snapshot "$dir")
  remount_scratch ro

  run_mpi "$logs.ro.log" "$np" "$api" "$dir" 2
  expect_agreed_error "the save to a read-only file system" "$np" "$api" "$dir" \
    "ckpt-2\.h5" "Read-only file system"

  local after
  after=$(snapshot "$dir")
  [[ "$after" == "$before" ]] ||
    fail "the directory changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "latest is '$(latest_of "$dir")', not ckpt-1.h5"
  cairn_verify "$dir/ckpt-1.h5" "$logs.cli.log"
  run_mpi "$logs.verify1.log" "$np" "$verify" "$dir" 1
  expect_ok "restore of step 1 from the read-only file system"

  remount_scratch rw
  run_mpi "$logs.save2.log" "$np" "$api" "$dir" 2
  expect_ok "the save of step 2 once writable"
  end_case "$(printf 'np=%s %-15s' "$np" "$api")" \
    "every rank: \"$ERROR_TEXT\"; dir byte-identical; latest ckpt-1, verifies and restores exactly read-only; step 2 saves once writable"
}

echo "readonly_test: saves to a read-only file system; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  for api in "${APIS[@]}"; do
    run_case "$np" "$api"
  done
done
echo "readonly_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
