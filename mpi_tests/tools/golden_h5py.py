#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The golden checkpoints read with h5py and numpy alone, by the example code of docs/format.md.

    golden_h5py.py FORMAT_MD GOLDEN_DIR

Takes the Python blocks of docs/format.md that define load() and xxh3_hex(), runs them, and
checks, for every tensor in GOLDEN_DIR/expected.json, that load() returns the expected values and
that every piece's bytes hash to the manifest's checksum. So the specification's example is kept
true, and the golden files stay readable without cairn.
"""
import json
import math
import re
import sys

import h5py
import numpy as np


def example_code(format_md):
    blocks = re.findall(r"```python\n(.*?)```", open(format_md).read(), re.S)
    loader = next(b for b in blocks if "def load(path, key)" in b)
    hasher = next(b for b in blocks if "def xxh3_hex" in b)
    loader = loader.split('if __name__ == "__main__":')[0]
    scope = {}
    exec(compile(loader + "\n" + hasher, format_md, "exec"), scope)
    return scope["load"], scope["xxh3_hex"]


def main():
    format_md, golden = sys.argv[1], sys.argv[2]
    load, xxh3_hex = example_code(format_md)
    expected = json.load(open(f"{golden}/expected.json"))
    failures = checked = pieces = 0
    for ckpt in expected["checkpoints"]:
        path = f"{golden}/{ckpt['file']}"
        with h5py.File(path, "r") as f:
            manifest = json.loads(f["cairn/manifest"][()].tobytes())
            by_key = {t["key"]: t for t in manifest["tensors"]}
            for t in ckpt["tensors"]:
                exact = t["dtype"] in ("i64", "u64")  # beyond 2^53: compare as integers
                got = np.asarray(load(path, t["key"]), dtype=None if exact else np.float64)
                want = np.array(t["values"], dtype=got.dtype).reshape(t["shape"])
                checked += 1
                if got.shape != tuple(t["shape"]) or not np.array_equal(got, want):
                    failures += 1
                    print(f"FAIL {path} {t['key']}: h5py read {got.ravel()[:8]}, expected {want.ravel()[:8]}")
                rec = by_key[t["key"]]
                esize = {"f16": 2, "bf16": 2, "i16": 2, "u16": 2, "f32": 4, "i32": 4, "u32": 4,
                         "f64": 8, "i64": 8, "u64": 8}.get(rec["dtype"], 1)
                for box in rec["boxes"]:
                    for piece in box["pieces"]:
                        n = math.prod(piece["count"]) * esize
                        if rec["storage"] == "packed":
                            start = piece["packed_offset"]
                            data = f["cairn/packed"][start:start + n].tobytes()
                        else:  # the hyperslab's bytes in the stored type, not converted
                            ds = f[rec["dataset"]]
                            stored = ds.id.get_type()
                            count = tuple(piece["count"])
                            buf = np.empty(count, dtype=np.dtype(f"V{stored.get_size()}"))
                            file_space = ds.id.get_space()
                            if count:
                                file_space.select_hyperslab(tuple(piece["offset"]), count)
                                mem_space = h5py.h5s.create_simple(count)
                            else:
                                mem_space = h5py.h5s.create(h5py.h5s.SCALAR)
                            ds.id.read(mem_space, file_space, buf, mtype=stored)
                            data = buf.tobytes()
                        pieces += 1
                        if xxh3_hex(data) != piece["xxh3"]:
                            failures += 1
                            print(f"FAIL {path} {t['key']} piece {piece['offset']}: checksum mismatch")
    print(f"h5py: {checked} tensors and {pieces} piece checksums checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
