#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The golden checkpoints read with h5py and numpy alone, by the example code of docs/format.md.

    golden_h5py.py FORMAT_MD GOLDEN_DIR

Takes the Python blocks of docs/format.md that define load() and xxh3_hex(), runs them, and
checks, for every checkpoint in GOLDEN_DIR/expected.json: the header (and in 2.x the table and
every rank's record) against their checksums; that tensors() lists exactly the expected keys with
their dtype, shape and storage; that load() returns the expected values; that the pieces cover
every element exactly once and that every piece's bytes hash to its checksum. Then it damages
copies (a tensor byte, and in 2.x a table byte and a record byte) and requires the same code to
notice. So the specification's example is kept true, and the golden files stay readable without
cairn, in every format version.
"""
import json
import math
import os
import re
import shutil
import sys
import tempfile

import h5py
import numpy as np


def example_code(format_md):
    blocks = re.findall(r"```python\n(.*?)```", open(format_md).read(), re.S)
    loader = next(b for b in blocks if "def load(path, key)" in b)
    hasher = next(b for b in blocks if "def xxh3_hex" in b)
    loader = loader.split('if __name__ == "__main__":')[0]
    scope = {}
    exec(compile(loader + "\n" + hasher, format_md, "exec"), scope)
    return scope


def check_file(code, path, ckpt):
    """Every check on one checkpoint: (failure messages, tensors, pieces, records checked)."""
    failures, pieces, records = [], 0, 0
    try:
        with h5py.File(path, "r") as f:
            records = code["check_metadata"](f)
            found = code["tensors"](f)
            want_keys = {t["key"] for t in ckpt["tensors"]}
            if set(found) != want_keys:
                failures.append(f"keys differ: missing {sorted(want_keys - set(found))}, "
                                f"unexpected {sorted(set(found) - want_keys)}")
            for t in ckpt["tensors"]:
                key, got = t["key"], found.get(t["key"])
                if got is None:
                    continue
                if [got["dtype"], list(got["shape"]), got["storage"]] != \
                        [t["dtype"], t["shape"], t["storage"]]:
                    failures.append(f"{key}: {got['dtype']} {got['shape']} {got['storage']}, "
                                    f"expected {t['dtype']} {t['shape']} {t['storage']}")
                    continue
                exact = t["dtype"] in ("i64", "u64")  # beyond 2^53: compare as integers
                values = np.asarray(code["load"](path, key), dtype=None if exact else np.float64)
                want = np.array(t["values"], dtype=values.dtype).reshape(t["shape"])
                if values.shape != tuple(t["shape"]) or not np.array_equal(values, want):
                    failures.append(f"{key}: h5py read {values.ravel()[:8]}, expected "
                                    f"{want.ravel()[:8]}")
                covered = np.zeros(t["shape"], np.int32)
                for piece in got["pieces"]():
                    where = tuple(slice(o, o + c) for o, c in zip(piece["offset"], piece["count"]))
                    covered[where] += 1
                    pieces += 1
                    if code["xxh3_hex"](code["piece_data"](f, key, got, piece)) != piece["xxh3"]:
                        failures.append(f"{key} piece {piece['offset']}: checksum mismatch")
                if not np.all(covered == 1):
                    failures.append(f"{key}: the pieces do not cover every element exactly once")
    except (ValueError, KeyError, IndexError, OSError) as e:
        failures.append(f"{type(e).__name__}: {e}")
    return failures, len(ckpt["tensors"]), pieces, records


def flip_byte(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x5a]))


def damaged_copies(path):
    """(what, file offset, phrase the failures must contain) of damage the checks must notice."""
    with h5py.File(path, "r") as f:
        header = json.loads(f["cairn/manifest"][()].tobytes())
        datasets = []
        f["tensors"].visititems(lambda _, o: datasets.append(o) if isinstance(o, h5py.Dataset)
                                else None)
        data = next(d for d in datasets if d.size > 0)
        out = [(f"first byte of {data.name}", data.id.get_offset(), "checksum mismatch")]
        if header["format_version"].startswith("2."):
            out.append(("a byte of the table", f["cairn/table"].id.get_offset() + 30, "table"))
            last = header["world_size"] - 1
            start = int(f["cairn/record_offsets"][last])
            out.append((f"a piece checksum in the record of rank {last}",
                        f["cairn/records"].id.get_offset() + start + 40 + 8,
                        f"record of rank {last}"))
    return out


def main():
    format_md, golden = sys.argv[1], sys.argv[2]
    code = example_code(format_md)
    expected = json.load(open(f"{golden}/expected.json"))
    failed = 0
    for ckpt in expected["checkpoints"]:
        path = f"{golden}/{ckpt['file']}"
        failures, tensors, pieces, records = check_file(code, path, ckpt)
        for message in failures:
            print(f"FAIL {path}: {message}")
        failed += len(failures)
        print(f"{path}: format {expected['format_version']}, {tensors} tensors, {pieces} piece "
              f"checksums, {records} record checksums checked, {len(failures)} failures")
    # The checks must be able to fail: damaged copies of the last checkpoint.
    with tempfile.TemporaryDirectory() as scratch:
        for what, offset, phrase in damaged_copies(path):
            copy = os.path.join(scratch, "damaged.h5")
            shutil.copyfile(path, copy)
            flip_byte(copy, offset)
            failures = check_file(code, copy, ckpt)[0]
            noticed = [message for message in failures if phrase in message]
            if noticed:
                print(f"damaged copy ({what}): noticed: {noticed[0]}")
            else:
                failed += 1
                print(f"FAIL damaged copy ({what}): not noticed as '{phrase}': {failures}")
    print(f"h5py: {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
