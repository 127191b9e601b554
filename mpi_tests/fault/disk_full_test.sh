#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Disk full: a save that runs out of space on a real (tmpfs) file system.
#
#   disk_full_test.sh CRASH_SAVER CAIRN_CLI     (env: MPIEXEC, CAIRN_TEST_DIR; set by ctest)
#
# Mounts a tmpfs under the scratch directory (always unmounted by an EXIT trap; without the
# privilege to mount, it skips with exit code 77). For each API (Checkpoint::save, save_async,
# CheckpointManager::save, save_async), N in 1 2 3 and two ways of finding the full disk, in a
# fresh directory on that tmpfs:
#   1. the good save of step 1 must succeed; the file system is then shrunk to 1.5 times what it
#      uses: room for one checkpoint, not two;
#   2. the save of step 2 must fail on every rank with the same error, which names ckpt-2.h5 and
#      says "No space", and exit cleanly (exit 1, under the timeout, no HDF5 error stack):
#      - "writes": SessionOptions::check_free_space off (CRASH_SAVER_CHECK_FREE_SPACE=0), so a
#        write runs out of space; the error must not say "nothing was written";
#      - "check": the check on, so the save is refused before its file exists ("nothing was
#        written");
#   3. the directory must be byte-identical to before the failed save: no temporary file left,
#      the state file unchanged (latest still ckpt-1.h5), ckpt-1.h5 unchanged; `cairn verify`
#      passes on it; a new job restores step 1 exactly (on the full file system);
#   4. with the space back, the same save of step 2 works and becomes the latest.
# Then, for Checkpoint::save and CheckpointManager::save_async and N in 1 2 3, the same steps with a
# file system already 100% full before the save of step 2 ("full": a filler file takes the last
# block; the check on). Without the check, HDF5 itself fails to write the new file's first
# metadata, and the process crashes in MPI_Finalize (HDF5 1.10 cannot close such a file): here the
# save must be refused, and the job must exit 1, not crash.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: disk_full_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: disk_full_test.sh CRASH_SAVER CAIRN_CLI}"
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
  local np="$1" api="$2" how="$3"
  local name="np$np-$api-$how" verify=verify check=1
  [[ "$how" == writes ]] && check=0
  export CRASH_SAVER_CHECK_FREE_SPACE=$check
  [[ "$api" == mgr-* ]] && verify=mgr-verify
  local dir="$SCRATCH_MOUNT/$name" logs="$CAIRN_TEST_DIR/$name"
  begin_case
  remount_scratch size=64m
  rm -rf "${SCRATCH_MOUNT:?}"/*

  # 1. A good checkpoint, then room for one more half.
  run_mpi "$logs.save1.log" "$np" "$api" "$dir" 1
  expect_ok "the good save of step 1"
  local used size
  used=$(used_bytes)
  # In KiB, rounded up to whole 4 KiB pages.
  # shellcheck disable=SC2017
  size=$(((used * 3 / 2 + 4095) / 4096 * 4))
  remount_scratch "size=${size}k"
  if [[ "$how" == full ]]; then
    # The last block too (dd stops at ENOSPC); outside the checkpoint directory.
    dd if=/dev/zero of="$SCRATCH_MOUNT/filler" bs=4k 2>/dev/null || true
    [[ "$(df -B1 --output=avail "$SCRATCH_MOUNT" | tail -1 | tr -d ' ')" -eq 0 ]] ||
      fail "the file system is not 100% full: $(df -h "$SCRATCH_MOUNT" | tail -1)"
  fi
  local before
  before=$(snapshot "$dir")

  # 2. The save that runs out of space: refused up front, or failed in a write.
  run_mpi "$logs.full.log" "$np" "$api" "$dir" 2
  expect_agreed_error "the save on a full disk" "$np" "$api" "$dir" "ckpt-2\.h5" "No space"
  if [[ "$how" == writes ]]; then
    if grep -q "nothing was written" <<<"$ERROR_TEXT"; then fail "the check ran although it was off"; fi
  else
    grep -q "nothing was written" <<<"$ERROR_TEXT" || fail "the save was not refused up front"
  fi

  # 3. Nothing changed, nothing left behind; the previous checkpoint restores exactly.
  local tmps after
  tmps=$(tmp_files "$dir")
  [[ -z "$tmps" ]] || fail "temporary files left behind: $tmps"
  after=$(snapshot "$dir")
  [[ "$after" == "$before" ]] ||
    fail "the directory changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "latest is '$(latest_of "$dir")', not ckpt-1.h5"
  cairn_verify "$dir/ckpt-1.h5" "$logs.cli.log"
  run_mpi "$logs.verify1.log" "$np" "$verify" "$dir" 1
  expect_ok "restore of step 1 on the full disk"

  # 4. Space back: the job carries on.
  rm -f "$SCRATCH_MOUNT/filler"
  remount_scratch size=64m
  run_mpi "$logs.save2.log" "$np" "$api" "$dir" 2
  expect_ok "the save of step 2 with space"
  [[ "$(latest_of "$dir")" == ckpt-2.h5 ]] || fail "after the retry, latest is '$(latest_of "$dir")'"

  end_case "$(printf 'np=%s %-15s %-6s' "$np" "$api" "$how")" \
    "fs ${size} KiB (1 ckpt uses $((used / 1024)) KiB): every rank: \"$ERROR_TEXT\"; no tmp file; dir byte-identical; latest ckpt-1, verifies, restores exactly; step 2 saves once space is back"
}

echo "disk_full_test: ENOSPC during save on a tmpfs; $MPIEXEC, saver $SAVER, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  for api in "${APIS[@]}"; do
    run_case "$np" "$api" writes
    run_case "$np" "$api" check
  done
  for api in save mgr-save-async; do
    run_case "$np" "$api" full
  done
done
echo "disk_full_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
