#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Disk full at the levels of multi-level checkpointing, on a real (tmpfs) file system.
#
#   multilevel_disk_full_test.sh CRASH_SAVER CAIRN_CLI   (env: MPIEXEC, CAIRN_TEST_DIR; by ctest)
#
# Mounts a tmpfs under the scratch directory (always unmounted by an EXIT trap; without the
# privilege to mount, it skips with exit code 77). Every rank is its own node
# (CAIRN_RANK_PER_NODE=1), partner redundancy. For N in 2 3:
# Level 1 full (node-local directories on the tmpfs, the shared directory on the scratch disk,
# CAIRN_SHARED_EVERY=0 so the previous checkpoint lives at level 1 only):
#   1. step 1 is saved; the tmpfs then shrinks to leave room for a part of the next checkpoint
#      but not for its partner copies ("redundancy": the failure is in protect) or not even for
#      the parts ("part": the failure is in the node-local save);
#   2. the save of step 2 fails on every rank with the same error, naming ckpt-2.h5 and "No space";
#   3. no file of ckpt-2 is left in any node's directory or its redundancy directory (nothing
#      partial that could look valid), the files of ckpt-1 and the state file are byte-identical;
#   4. a new job restores step 1 exactly from node-local on every rank, on the full disk.
# Level 3 full (the shared directory on the tmpfs, node-local directories on the scratch disk,
# CAIRN_SHARED_EVERY=1):
#   5. step 1 is saved and drained; the tmpfs then shrinks to 1.5 times what it uses;
#   6. a job saves steps 2 and 3: each drain fails (No space: refused by the free-space check of
#      SessionOptions before its file exists) and is logged as a warning on rank 0
#      when the drain is settled (by crash_saver's call of checkpoints() after each save, which
#      settles it as the next save would), never thrown; the job ends cleanly (exit 0);
#   7. the shared latest is still ckpt-1.h5, no ckpt-2/ckpt-3 file (nor temporary file) is in the
#      shared directory, the state file records ckpt-2 and ckpt-3 node-local;
#   8. a new job restores step 3 exactly from node-local on every rank.
# Every case runs to the end; the script exits 1 if any case failed.
set -euo pipefail

SAVER="${1:?usage: multilevel_disk_full_test.sh CRASH_SAVER CAIRN_CLI}"
CAIRN_CLI="${2:?usage: multilevel_disk_full_test.sh CRASH_SAVER CAIRN_CLI}"
: "${MPIEXEC:?MPIEXEC must name the mpiexec to use}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
MPI_TIMEOUT=30
# shellcheck source=fault_lib.sh
source "$(dirname "$0")/fault_lib.sh"
unset CAIRN_KEEP_NODE_LOCAL
export CAIRN_RANK_PER_NODE=1 CAIRN_REDUNDANCY=partner

readonly RANK_COUNTS=(2 3)

if mountpoint -q "$CAIRN_TEST_DIR/mnt" 2>/dev/null; then umount -l "$CAIRN_TEST_DIR/mnt"; fi
rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
mount_scratch_tmpfs "$CAIRN_TEST_DIR/mnt"

state_entries() {
  python3 -c 'import json,sys; print(" ".join("%s:%s" % (e["name"], "shared" if e.get("shared", True) else "local") for e in json.load(open(sys.argv[1]))["checkpoints"]))' \
    "$1/cairn-state.json" 2>/dev/null || echo "(no readable state file)"
}

# expect_node_local LOG NP STEP ROOT: every rank restored STEP from its own part under ROOT.
expect_node_local() {
  local r
  for ((r = 0; r < $2; ++r)); do
    grep -q "^crash_saver: rank $r restored step $3 at level 'node-local' from $4/node-$r/ckpt-$3.h5$" "$1" ||
      fail "rank $r did not restore step $3 from its node-local part"
  done
  grep -q "^crash_saver: rebuilt nodes: (none)$" "$1" || fail "a node was rebuilt"
}

l1_case() {
  local np="$1" where="$2"
  local name="l1-$where-np$np"
  local dir="$CAIRN_TEST_DIR/$name/shared" root="$SCRATCH_MOUNT/$name" logs="$CAIRN_TEST_DIR/$name"
  begin_case
  remount_scratch size=64m
  rm -rf "${SCRATCH_MOUNT:?}"/*
  export CAIRN_NODE_LOCAL_DIR="$root" CAIRN_SHARED_EVERY=0

  # 1. A good checkpoint at level 1, then a file system too small for the next one.
  run_mpi "$logs.save1.log" "$np" mgr-save "$dir" 1
  expect_ok "the node-local save of step 1"
  local used size
  used=$(used_bytes)
  # ckpt-1 uses `used`: half in the parts, half in their partner copies. In KiB, whole 4 KiB pages.
  # shellcheck disable=SC2017
  if [[ "$where" == part ]]; then
    size=$(((used * 5 / 4 + 4095) / 4096 * 4)) # a quarter more: half of the next parts
  else
    size=$(((used * 7 / 4 + 4095) / 4096 * 4)) # three quarters more: the parts, half the copies
  fi
  remount_scratch "size=${size}k"
  local before before_state
  before=$(snapshot "$root")
  before_state=$(snapshot "$dir")

  # 2. The save that runs out of space.
  run_mpi "$logs.full.log" "$np" mgr-save "$dir" 2
  expect_agreed_error "the node-local save on a full disk" "$np" mgr-save "$dir" "ckpt-2\.h5" "No space"

  # 3. Nothing of ckpt-2 left; ckpt-1 and the state file untouched.
  local left
  left=$(find "$root" -name 'ckpt-2*' -printf '%P ' 2>/dev/null)
  [[ -z "$left" ]] || fail "files of ckpt-2 left at level 1: $left"
  [[ "$(snapshot "$root")" == "$before" ]] ||
    fail "the node-local directories changed: $(diff <(echo "$before") <(snapshot "$root") | tr '\n' ' ')"
  [[ "$(snapshot "$dir")" == "$before_state" ]] || fail "the state file changed"

  # 4. The previous checkpoint restores from level 1.
  run_mpi "$logs.verify1.log" "$np" mgr-verify "$dir" 1
  expect_ok "the restore of step 1 on the full disk"
  expect_node_local "$logs.verify1.log" "$np" 1 "$root"

  end_case "$(printf 'np=%s L1 full (%-10s)' "$np" "$where")" \
    "tmpfs ${size} KiB (ckpt-1 uses $((used / 1024)) KiB): every rank: \"$ERROR_TEXT\"; no file of ckpt-2 left; step 1 restores node-local"
}

l3_case() {
  local np="$1"
  local name="l3-np$np"
  local dir="$SCRATCH_MOUNT/$name" root="$CAIRN_TEST_DIR/$name/local" logs="$CAIRN_TEST_DIR/$name"
  begin_case
  remount_scratch size=64m
  rm -rf "${SCRATCH_MOUNT:?}"/*
  export CAIRN_NODE_LOCAL_DIR="$root" CAIRN_SHARED_EVERY=1

  # 5. Step 1 at every level; then room for half a checkpoint at level 3.
  run_mpi "$logs.save1.log" "$np" mgr-save "$dir" 1
  expect_ok "the save of step 1"
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "step 1 did not drain: latest '$(latest_of "$dir")'"
  local used size
  used=$(used_bytes)
  # shellcheck disable=SC2017
  size=$(((used * 3 / 2 + 4095) / 4096 * 4))
  remount_scratch "size=${size}k"

  # 6. Two saves whose drains fail; the job goes on.
  run_mpi "$logs.save23.log" "$np" mgr-save-twice "$dir" 2
  expect_ok "the saves of steps 2 and 3 with a full shared directory"
  grep -q "^crash_saver: manager saved step 3 to " "$logs.save23.log" ||
    fail "step 3 was not saved after the failed drain of step 2"
  local warned
  warned=$(grep "^cairn: the background copy to the shared directory failed; the checkpoint stays node-local only: " \
    "$logs.save23.log" | grep "No space" | grep "nothing was written" | grep -c "checkpoint $dir/ckpt-[23]\.h5, " || true)
  [[ "$warned" -eq 2 ]] || fail "expected 2 warnings about the failed drains (No space, ckpt-2 and ckpt-3), got $warned"

  # 7. Level 3 keeps its latest; ckpt-2 and ckpt-3 are node-local only.
  [[ "$(latest_of "$dir")" == ckpt-1.h5 ]] || fail "the shared latest is '$(latest_of "$dir")', expected ckpt-1.h5"
  local left
  left=$(find "$dir" -name 'ckpt-[23]*' -printf '%P ')
  [[ -z "$left" ]] || fail "files of the failed drains in the shared directory: $left"
  [[ "$(state_entries "$dir")" == "ckpt-1.h5:shared ckpt-2.h5:local ckpt-3.h5:local" ]] ||
    fail "state file entries: $(state_entries "$dir")"

  # 8. The newest checkpoint restores from level 1.
  run_mpi "$logs.verify3.log" "$np" mgr-verify "$dir" 3
  expect_ok "the restore of step 3"
  expect_node_local "$logs.verify3.log" "$np" 3 "$root"

  end_case "np=$np L3 full" \
    "shared tmpfs ${size} KiB (ckpt-1 uses $((used / 1024)) KiB): both drains fail, logged, job exits 0; shared latest ckpt-1; step 3 restores node-local"
}

echo "multilevel_disk_full_test: ENOSPC at level 1 and level 3 on a tmpfs; $MPIEXEC, scratch $CAIRN_TEST_DIR"
for np in "${RANK_COUNTS[@]}"; do
  l1_case "$np" part
  l1_case "$np" redundancy
  l3_case "$np"
done
echo "multilevel_disk_full_test: $((CASES - FAILED)) of $CASES cases passed (${SECONDS}s)"
[[ "$FAILED" -eq 0 ]]
