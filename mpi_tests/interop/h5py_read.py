#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reads a cairn checkpoint without cairn -- h5py, numpy and json only, following docs/format.md --
and checks it against the values the writer put in.

    h5py_read.py FILE --writer quickstart --world-size 3 [--require-checksums]
    h5py_read.py FILE --writer crash_saver --step 1 --world-size 3 [--require-checksums]

Checks: the commit mark; the manifest (size and XXH3 from the commit mark, format, version, world
size, save counter); for every tensor, that the keys, dtypes, shapes and storage are the ones the
writer used, that its boxes and pieces cover every element exactly once, the XXH3 of every piece
and state blob, and every element's value. XXH3 comes from the python `xxhash` module if present,
else from Debian's libxxhash.so.0 through ctypes (the standard library), else it is skipped and
the output says so (--require-checksums makes that a failure).

Exit status: 0 if every check passed, 1 if any failed, 2 on usage errors.
"""
import argparse
import ctypes
import json
import math
import sys

import h5py
import numpy as np

# Little-endian element types of the packed bytes, by manifest dtype name (docs/format.md).
# numpy has no bfloat16: keep its raw bits as uint16 (widened to float32 for value checks).
PACKED = {"f16": "<f2", "bf16": "<u2", "f32": "<f4", "f64": "<f8", "i8": "i1", "i16": "<i2",
          "i32": "<i4", "i64": "<i8", "u8": "u1", "u16": "<u2", "u32": "<u4", "u64": "<u8",
          "bool": "?"}


def load_xxh3():
    """Returns (function bytes -> int, description), or (None, reason)."""
    try:
        import xxhash  # noqa: PLC0415 (optional dependency)
        return xxhash.xxh3_64_intdigest, "python xxhash module"
    except ImportError:
        pass
    try:
        lib = ctypes.CDLL("libxxhash.so.0")
        lib.XXH3_64bits.restype = ctypes.c_uint64
        lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return (lambda data: lib.XXH3_64bits(data, len(data))), "libxxhash.so.0 through ctypes"
    except (OSError, AttributeError):
        return None, "neither the python xxhash module nor libxxhash.so.0 is available"


# ---- what the writers put in -------------------------------------------------------------------

def quickstart_expected(args):
    """examples/quickstart/quickstart.cpp: expected_value(id, index) = id*1000 + (index % 997)*0.5
    for variable ids 1..4; Adam slots m and v of the f32 variables have ids 100+id and 200+id;
    three optimizer steps."""
    def value(ident):
        return lambda index: ident * 1000.0 + (index % 997) * 0.5

    variables = {"model/dense/kernel": (1, "f32", [37, 16]), "model/dense/bias": (2, "f32", [16]),
                 "model/embedding": (3, "f32", [12, 10]), "model/head": (4, "f64", [9, 5])}
    tensors = {}
    for path, (ident, dtype, shape) in variables.items():
        tensors[path + "/.ATTRIBUTES/VARIABLE_VALUE"] = (dtype, shape, None, value(ident))
        if dtype == "f32":
            for slot, base in (("m", 100), ("v", 200)):
                key = f"{path}/.OPTIMIZER_SLOT/optimizer/{slot}/.ATTRIBUTES/VARIABLE_VALUE"
                tensors[key] = (dtype, shape, None, value(base + ident))
    tensors["optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE"] = ("i64", [], None,
                                                                  lambda i: 3 + 0 * i)
    states = {"loader/.ATTRIBUTES/STATE": "per_rank", "run/.ATTRIBUTES/STATE": "global"}
    return tensors, states, 1


def crash_saver_expected(args):
    """mpi_tests/fault/crash_saver.cpp at step S: weights f32 [9000, 33] (a dataset of its own)
    = S*100000 + (index % 65521)*0.125; bias f64 [5, 7] = S*1e6 + 2000 + index; per-rank state."""
    step = args.step
    tensors = {
        "weights/.ATTRIBUTES/VARIABLE_VALUE":
            ("f32", [9000, 33], "dataset", lambda i: step * 100000.0 + (i % 65521) * 0.125),
        "bias/.ATTRIBUTES/VARIABLE_VALUE":
            ("f64", [5, 7], "packed", lambda i: step * 1.0e6 + 2000.0 + i),
    }
    return tensors, {"progress/.ATTRIBUTES/STATE": "per_rank"}, step


WRITERS = {"quickstart": quickstart_expected, "crash_saver": crash_saver_expected}


# ---- reading ------------------------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.failures = []

    def check(self, ok, message):
        if not ok:
            self.failures.append(message)
            print(f"  MISMATCH: {message}")
        return ok


def read_text_attribute(f, name):
    value = f.attrs[name]
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode("ascii")
    return str(value)


def read_raw(dataset, offset, count, itemsize):
    """The bytes of hyperslab [offset, offset+count) in the dataset's own file type, row-major:
    what the format's piece checksums cover (h5py would convert bf16 to float32)."""
    fspace = dataset.id.get_space()
    if count:
        fspace.select_hyperslab(tuple(offset), tuple(count))
        mspace = h5py.h5s.create_simple(tuple(count))
    else:
        mspace = h5py.h5s.create(h5py.h5s.SCALAR)
    buffer = np.empty(tuple(count), dtype=np.dtype(f"V{itemsize}"))
    dataset.id.read(mspace, fspace, buffer, mtype=dataset.id.get_type())
    return buffer.tobytes()


def rebuild_tensor(f, t, xxh3, checker):
    """The whole tensor as numpy, from its dataset or its packed pieces; checks coverage and
    piece checksums on the way. Returns (array, pieces checked)."""
    key, shape = t["key"], t["shape"]
    dtype = np.dtype(PACKED[t["dtype"]])
    covered = np.zeros(shape, dtype=np.int32)
    checked = 0
    if t["storage"] == "dataset":
        dataset = f[t["dataset"]]
        checker.check(list(dataset.shape) == shape,
                      f"{key}: HDF5 dataset shape {list(dataset.shape)} != manifest shape {shape}")
        checker.check(dataset.id.get_type().get_size() == dtype.itemsize,
                      f"{key}: HDF5 element size {dataset.id.get_type().get_size()} != "
                      f"{dtype.itemsize} for {t['dtype']}")
        whole = dataset[()]  # what any h5py user sees: HDF5 converts f16/bf16/bool
        if t["dtype"] == "bf16":
            whole = whole.astype("<f4")
    else:
        whole = np.zeros(shape, dtype)
        packed = f["/cairn/packed"]
    for box in t["boxes"]:
        for piece in box["pieces"]:
            offset, count = piece["offset"], piece["count"]
            where = tuple(slice(o, o + c) for o, c in zip(offset, count))
            covered[where] += 1
            if t["storage"] == "dataset":
                raw = read_raw(dataset, offset, count, dtype.itemsize) if xxh3 else None
            else:
                start = piece["packed_offset"]
                raw = packed[start:start + math.prod(count) * dtype.itemsize].tobytes()
                whole[where] = np.frombuffer(raw, dtype).reshape(count)
            if xxh3:
                got = "%016x" % xxh3(raw)
                checked += 1
                checker.check(got == piece["xxh3"],
                              f"{key}: checksum mismatch in piece offset={offset} count={count} "
                              f"(rank {box['rank']}): manifest {piece['xxh3']}, data {got}")
    checker.check(bool(np.all(covered == 1)),
                  f"{key}: boxes do not cover every element exactly once "
                  f"(coverage min {covered.min(initial=1)}, max {covered.max(initial=1)})")
    if t["storage"] == "packed" and t["dtype"] == "bf16":
        whole = (whole.astype("<u4") << 16).view("<f4")
    return whole, checked


def compare_values(key, array, dtype_name, value_of, checker):
    index = np.arange(array.size, dtype=np.int64).reshape(array.shape)
    want = np.asarray(value_of(index), dtype=np.float64).astype(np.dtype(PACKED[dtype_name]))
    bad = np.flatnonzero(array.reshape(-1) != want.reshape(-1))
    if checker.check(bad.size == 0,
                     f"{key}: {bad.size} of {array.size} elements differ from the writer's values"
                     + (f"; first at flat index {bad[0]}: {array.reshape(-1)[bad[0]]!r} != "
                        f"{want.reshape(-1)[bad[0]]!r}" if bad.size else "")):
        return array.size
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--writer", choices=sorted(WRITERS), required=True)
    parser.add_argument("--step", type=int, default=1, help="crash_saver: the step saved")
    parser.add_argument("--world-size", type=int, required=True, help="ranks of the saving job")
    parser.add_argument("--require-checksums", action="store_true",
                        help="fail if no XXH3 implementation is available")
    args = parser.parse_args()

    checker = Checker()
    xxh3, how = load_xxh3()
    print(f"h5py_read: {args.file} (writer {args.writer}); h5py {h5py.version.version}, "
          f"numpy {np.__version__}")
    if xxh3:
        print(f"  checksums: verified with {how}")
    else:
        print(f"  checksums: NOT verified: {how}")
        checker.check(not args.require_checksums, "--require-checksums: no XXH3 implementation")
    expected_tensors, expected_states, expected_counter = WRITERS[args.writer](args)

    with h5py.File(args.file, "r") as f:
        # The commit mark first: nothing else in the file is trusted without it.
        if not checker.check("cairn_commit" in f.attrs, "root attribute cairn_commit is missing"):
            return 1
        mark = json.loads(read_text_attribute(f, "cairn_commit"))
        print(f"  commit mark: {mark}")
        checker.check(read_text_attribute(f, "cairn_format").startswith("cairn-checkpoint 1."),
                      f"cairn_format is {read_text_attribute(f, 'cairn_format')!r}")
        manifest_ds = f["/cairn/manifest"]
        checker.check(manifest_ds.shape == (mark["manifest_bytes"],),
                      f"/cairn/manifest has shape {manifest_ds.shape}, commit mark says "
                      f"{mark['manifest_bytes']} bytes")
        manifest_bytes = manifest_ds[()].tobytes()
        if xxh3:
            got = "%016x" % xxh3(manifest_bytes)
            checker.check(got == mark["manifest_xxh3"],
                          f"manifest checksum {got} != commit mark {mark['manifest_xxh3']}")
        manifest = json.loads(manifest_bytes)
        checker.check(manifest["format"] == "cairn-checkpoint", f"format {manifest['format']!r}")
        checker.check(manifest["format_version"].split(".")[0] == "1",
                      f"format_version {manifest['format_version']!r} is not 1.x")
        checker.check(manifest["world_size"] == args.world_size,
                      f"world_size {manifest['world_size']}, expected {args.world_size}")
        checker.check(manifest["save_counter"] == expected_counter,
                      f"save_counter {manifest['save_counter']}, expected {expected_counter}")
        print(f"  manifest: format {manifest['format']} {manifest['format_version']}, library "
              f"{manifest['library_version']}, world_size {manifest['world_size']}, save_counter "
              f"{manifest['save_counter']}, {len(manifest['tensors'])} tensors, "
              f"{len(manifest['states'])} states, {manifest['packed_bytes']} packed bytes")

        keys = {t["key"] for t in manifest["tensors"]}
        checker.check(keys == set(expected_tensors),
                      f"tensor keys differ: missing {sorted(set(expected_tensors) - keys)}, "
                      f"unexpected {sorted(keys - set(expected_tensors))}")
        for t in manifest["tensors"]:
            if t["key"] not in expected_tensors:
                continue
            dtype_name, shape, storage, value_of = expected_tensors[t["key"]]
            ok = checker.check(t["dtype"] == dtype_name and t["shape"] == shape,
                               f"{t['key']}: {t['dtype']} {t['shape']}, expected {dtype_name} "
                               f"{shape}")
            if storage:
                checker.check(t["storage"] == storage,
                              f"{t['key']}: storage {t['storage']!r}, expected {storage!r}")
            if not ok:
                continue
            array, pieces = rebuild_tensor(f, t, xxh3, checker)
            values = compare_values(t["key"], array, dtype_name, value_of, checker)
            where = t["dataset"] if t["storage"] == "dataset" else "/cairn/packed"
            print(f"  tensor {t['key']}: {t['dtype']} {t['shape']} {t['layout']}, {t['storage']} "
                  f"({where}), {len(t['boxes'])} boxes, {pieces} piece checksums, {values} "
                  f"values checked")

        states = {s["key"]: s for s in manifest["states"]}
        checker.check(set(states) == set(expected_states),
                      f"state keys {sorted(states)}, expected {sorted(expected_states)}")
        for key, scope in expected_states.items():
            if key not in states:
                continue
            s = states[key]
            blobs = 0
            checker.check(s["scope"] == scope, f"{key}: scope {s['scope']!r}, expected {scope!r}")
            want_ranks = list(range(args.world_size)) if scope == "per_rank" else None
            got_ranks = sorted(b["rank"] for b in s["blobs"])
            checker.check(len(s["blobs"]) == 1 if want_ranks is None else got_ranks == want_ranks,
                          f"{key}: blobs from ranks {got_ranks} for {scope} state")
            for b in s["blobs"]:
                data = f["/cairn/packed"][b["packed_offset"]:b["packed_offset"] + b["bytes"]]
                data = data.tobytes()
                checker.check(len(data) == b["bytes"], f"{key}: blob of rank {b['rank']} is "
                              f"{len(data)} bytes, manifest says {b['bytes']}")
                if xxh3:
                    got = "%016x" % xxh3(data)
                    blobs += 1
                    checker.check(got == b["xxh3"], f"{key}: checksum mismatch in the blob of "
                                  f"rank {b['rank']}: manifest {b['xxh3']}, data {got}")
            print(f"  state {key}: {s['scope']}, {len(s['blobs'])} blobs, {blobs} checksums "
                  f"checked")

        # Format 1.1: /cairn/packed_ranks bounds every rank's packed pieces and blobs.
        if manifest["packed_bytes"] > 0 and checker.check("packed_ranks" in f["/cairn"],
                                                           "/cairn/packed_ranks is missing"):
            bounds = [int(v) for v in f["/cairn/packed_ranks"][()]]
            checker.check(len(bounds) == args.world_size + 1 and bounds[0] == 0
                          and bounds[-1] == manifest["packed_bytes"]
                          and bounds == sorted(bounds),
                          f"/cairn/packed_ranks {bounds} is not the rank regions of "
                          f"{manifest['packed_bytes']} bytes over {args.world_size} ranks")
            outside = 0
            ranges = [(b["rank"], p["packed_offset"],
                       p["packed_offset"] + math.prod(p["count"]) * np.dtype(PACKED[t["dtype"]]).itemsize)
                      for t in manifest["tensors"] if t["storage"] == "packed"
                      for b in t["boxes"] for p in b["pieces"]]
            ranges += [(b["rank"], b["packed_offset"], b["packed_offset"] + b["bytes"])
                       for s in manifest["states"] for b in s["blobs"]]
            for rank, start, end in ranges:
                if len(bounds) == args.world_size + 1 and not (
                        bounds[rank] <= start and end <= bounds[rank + 1]):
                    outside += 1
            checker.check(outside == 0, f"{outside} packed values lie outside their rank's region")
            print(f"  packed_ranks: {bounds}, {len(ranges)} packed values inside their regions")

    if checker.failures:
        print(f"h5py_read: FAILED: {len(checker.failures)} mismatches")
        return 1
    print("h5py_read: OK: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
