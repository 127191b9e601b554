#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_smoke.sh SCRIPTS_BENCH CAIRN_BENCH (env: CAIRN_TEST_DIR, MPIEXEC; set by ctest):
# runs every workload of the benchmark at --quick sizes on 2 ranks (W3: 3 ranks restored on 2)
# and checks that each run and each median has every field and that every restore verified.
set -euo pipefail
BENCH="${1:?usage: bench_smoke.sh SCRIPTS_BENCH CAIRN_BENCH}"
BIN="${2:?usage: bench_smoke.sh SCRIPTS_BENCH CAIRN_BENCH}"
: "${CAIRN_TEST_DIR:?CAIRN_TEST_DIR must name a scratch directory}"
rm -rf "$CAIRN_TEST_DIR"
mkdir -p "$CAIRN_TEST_DIR"
out="$CAIRN_TEST_DIR/results.jsonl"
CAIRN_BENCH_BIN="$BIN" "$BENCH" --workload all --quick --ranks 2 --w3-ranks 3 --repeat 1 \
  --dir "$CAIRN_TEST_DIR/data" --out "$out" | tee "$CAIRN_TEST_DIR/output.txt"
python3 - "$out" <<'PY'
import json, sys
fields = ["workload", "ranks", "save_ranks", "bytes", "save_s", "save_gbps", "load_s", "load_gbps",
          "raw_write_gbps", "raw_read_gbps", "save_ratio", "load_ratio", "peak_rss_mib",
          "async_blocked_s", "async_commit_s", "memcpy_s", "alloc_s", "restart_s",
          "raw_fresh_read_s", "restart_ratio"]
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
errors = []
seen = set()
for j in lines:
    missing = [f for f in fields if f not in j]
    if missing:
        errors.append(f"{j.get('workload')} run {j.get('run')}: missing {missing}")
    if not j.get("verified"):
        errors.append(f"{j.get('workload')} run {j.get('run')}: restore not verified")
    for f in ("save_s", "load_s", "raw_write_gbps", "raw_read_gbps", "peak_rss_mib", "alloc_s",
              "restart_s", "raw_fresh_read_s"):
        if not (isinstance(j.get(f), (int, float)) and j[f] > 0):
            errors.append(f"{j.get('workload')} run {j.get('run')}: {f} = {j.get(f)!r}")
    if j.get("run") == "median":
        seen.add(j["workload"])
if seen != {"W1", "W2", "W3"}:
    errors.append(f"medians for {sorted(seen)}, want W1 W2 W3")
w3 = [j for j in lines if j.get("workload") == "W3"]
if w3 and (w3[0]["save_ranks"], w3[0]["ranks"]) != (3, 2):
    errors.append(f"W3 ran {w3[0]['save_ranks']}->{w3[0]['ranks']}, want 3->2")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
grep -q "^Medians" "$CAIRN_TEST_DIR/output.txt" || { echo "FAIL: no table"; exit 1; }
rm -rf "$CAIRN_TEST_DIR/data"
echo "bench smoke test passed"
