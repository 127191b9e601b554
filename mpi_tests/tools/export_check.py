#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reads files written by `cairn export` without cairn and compares every value.

    export_check.py EXPECTED_JSON CKPT_FILE_NAME LS_JSON OUT.safetensors|OUT.h5 [GLOBS...]

EXPECTED_JSON is a make_golden expected.json; CKPT_FILE_NAME picks its checkpoint entry. LS_JSON is
`cairn ls --json` of that checkpoint. The export must hold exactly the tensors of `cairn ls` (or,
given GLOBS, those whose key matches one of them), each with the dtype, shape and values of
expected.json.
"""
import fnmatch
import json
import struct
import sys

import numpy as np

NUMPY = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2",
         "I32": "<i4", "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8",
         "BOOL": "?"}
CAIRN_TO_ST = {"f16": "F16", "bf16": "BF16", "f32": "F32", "f64": "F64", "i8": "I8", "i16": "I16",
               "i32": "I32", "i64": "I64", "u8": "U8", "u16": "U16", "u32": "U32", "u64": "U64",
               "bool": "BOOL"}


def read_safetensors(path):
    """The safetensors format in a few lines: u64 header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    meta = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in meta.values()), meta
    tensors, end = {}, 0
    for key, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = t["data_offsets"]
        assert begin == end, f"{key}: data not contiguous ({begin} after {end})"
        end = stop
        a = np.frombuffer(data[begin:stop], dtype=NUMPY[t["dtype"]]).reshape(t["shape"])
        if t["dtype"] == "BF16":  # numpy has no bfloat16: the upper half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[key] = (t["dtype"], a)
    assert end == len(data), f"{len(data) - end} bytes after the last tensor"
    return tensors


def read_h5(path):
    import h5py
    tensors = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                tensors[name] = (None, obj[()])
        f.visititems(visit)
    return tensors


def main():
    expected_json, ckpt, ls_json, out = sys.argv[1:5]
    globs = sys.argv[5:]
    entry = next(c for c in json.load(open(expected_json))["checkpoints"] if c["file"] == ckpt)
    expected = {t["key"]: t for t in entry["tensors"]}
    listed = [t["key"] for t in json.load(open(ls_json))["tensors"]]
    want_keys = sorted(k for k in listed if not globs or any(fnmatch.fnmatchcase(k, g) for g in globs))
    got = read_safetensors(out) if out.endswith(".safetensors") else read_h5(out)
    failures = 0
    if sorted(got) != want_keys:
        print(f"FAIL {out}: keys {sorted(got)}\n  expected {want_keys}")
        failures += 1
    for key in want_keys:
        if key not in got:
            continue
        st_dtype, a = got[key]
        t = expected[key]
        if st_dtype is not None and st_dtype != CAIRN_TO_ST[t["dtype"]]:
            print(f"FAIL {out} {key}: dtype {st_dtype}, expected {t['dtype']}")
            failures += 1
        exact = t["dtype"] in ("i64", "u64")  # beyond 2^53: compare as integers
        a = np.asarray(a) if exact else np.asarray(a, dtype=np.float64)
        want = np.array(t["values"], dtype=a.dtype).reshape(t["shape"])
        if a.shape != tuple(t["shape"]) or not np.array_equal(a, want):
            print(f"FAIL {out} {key}: read {a.ravel()[:8]} {a.shape}, expected {want.ravel()[:8]}")
            failures += 1
    print(f"export_check {out}: {len(want_keys)} tensors compared, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
