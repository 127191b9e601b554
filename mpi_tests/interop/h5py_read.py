#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reads a cairn checkpoint without cairn -- h5py, numpy and json only, following docs/format.md --
and checks it against the values the writer put in.

    h5py_read.py FILE --writer quickstart --world-size 3 [--require-checksums]
    h5py_read.py FILE --writer crash_saver --step 1 --world-size 3 [--require-checksums]

Reads formats 1.x (one JSON manifest) and 2.x (a JSON header, the binary table and every rank's
binary record, decoded here with struct and numpy into the same tensor and state lists as 1.x).
A node-local part (format 2.1, a header with "part") is refused by name: it is not a whole
checkpoint, and this reader checks every writer's values.
Checks: the commit mark; the manifest or header (size and XXH3 from the commit mark, format,
version, world size, save counter); in 2.x the table (size and XXH3 from the commit mark, magic,
version) and every rank's record (magic, rank, length, body XXH3); for every tensor, that the keys,
dtypes, shapes and storage are the ones the writer used, that its boxes and pieces cover every
element exactly once, the XXH3 of every piece and state blob, and every element's value. XXH3
comes from the python `xxhash` module if present, else from Debian's libxxhash.so.0 through
ctypes (the standard library), else it is skipped and the output says so (--require-checksums
makes that a failure).

Exit status: 0 if every check passed, 1 if any failed, 2 on usage errors.
"""
import argparse
import ctypes
import itertools
import json
import math
import struct
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

def quickstart_expected(args, path):
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


def crash_saver_expected(args, path):
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


def golden_expected(args, path):
    """tests/golden/format-<version>/expected.json: the values of the checkpoint named like
    `path` (make_golden, on 2 ranks)."""
    expected = json.load(open(args.expected))
    ckpt = next(c for c in expected["checkpoints"] if c["file"] == path.rsplit("/", 1)[-1])
    tensors = {t["key"]: (t["dtype"], t["shape"], t["storage"],
                          lambda index, v=np.array(t["values"]): v[index])
               for t in ckpt["tensors"]}
    return tensors, {s["key"]: s["scope"] for s in ckpt["states"]}, ckpt["save_counter"]


WRITERS = {"quickstart": quickstart_expected, "crash_saver": crash_saver_expected,
           "golden": golden_expected}


# ---- format 2.x: the table and the records, as 1.x-style tensor and state lists -----------------

DTYPES = ["f16", "bf16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
          "bool"]
U8, U32, U64, I64 = "u1", "<u4", "<u8", "<i8"
# The fields of every table section (by id) and record entry: (numpy type, byte offset).
SECTIONS = {
    1: ("strings", {"byte": (U8, 0)}),
    2: ("nodes", {"kind_offset": (U32, 0), "kind_length": (U32, 4), "value_kind": (U8, 8),
                  "value": (U32, 12)}),
    3: ("edges", {"parent": (U32, 0), "child": (U32, 4), "name_offset": (U32, 8),
                  "name_length": (U32, 12)}),
    4: ("slots", {"optimizer": (U32, 0), "variable": (U32, 4), "slot": (U32, 8),
                  "name_offset": (U32, 12), "name_length": (U32, 16)}),
    5: ("tensors", {"node": (U32, 0), "dtype": (U8, 4), "storage": (U8, 5), "layout": (U8, 6),
                    "ndim": (U8, 7), "shape": (U32, 8), "param": (U32, 12),
                    "param_count": (U32, 16)}),
    6: ("dims", {"value": (I64, 0)}),
    7: ("boxes", {"tensor": (U32, 0), "rank": (U32, 4), "at": (U32, 8)}),
    8: ("replicated", {"tensor": (U32, 0), "piece": (U32, 4), "xxh3": (U64, 8),
                       "packed_offset": (I64, 16)}),
    9: ("states", {"node": (U32, 0), "scope": (U8, 4)}),
    10: ("global_blobs", {"state": (U32, 0), "writer": (U32, 4), "xxh3": (U64, 8),
                          "packed_offset": (I64, 16), "bytes": (I64, 24)}),
}
MIN_BYTES = {1: 1, 2: 16, 3: 16, 4: 24, 5: 24, 6: 8, 7: 16, 8: 24, 9: 8, 10: 32}
PIECE_ENTRY = {"tensor": (U32, 0), "piece": (U32, 4), "xxh3": (U64, 8), "packed_offset": (I64, 16)}
BLOB_ENTRY = {"state": (U32, 0), "xxh3": (U64, 8), "packed_offset": (I64, 16), "bytes": (I64, 24)}


def elements(data, fields, size, count, offset):
    dtype = np.dtype({"names": list(fields), "formats": [t for t, _ in fields.values()],
                      "offsets": [o for _, o in fields.values()], "itemsize": size})
    return [dict(zip(fields, e)) for e in np.frombuffer(data, dtype, count, offset).tolist()]


def decode_table(table, checker):
    """The sections of a 2.x table, or None if its preamble or directory is broken."""
    magic, major, count = struct.unpack_from("<8sII", table, 0)
    if not checker.check(magic == b"CAIRNTAB" and major == 2,
                         f"table: magic {magic!r}, major {major}; expected b'CAIRNTAB', 2"):
        return None
    sections = {}
    for i in range(count):
        ident, size, offset, n = struct.unpack_from("<IIQQ", table, 16 + 24 * i)
        if ident not in SECTIONS:
            continue
        name, fields = SECTIONS[ident]
        if not checker.check(name not in sections and size >= MIN_BYTES[ident]
                             and offset + size * n <= len(table),
                             f"table: section {name} ({n} x {size} bytes at {offset}) is invalid"):
            return None
        sections[name] = elements(table, fields, size, n, offset)
    missing = [name for name, _ in SECTIONS.values() if name not in sections]
    if not checker.check(not missing, f"table: sections {missing} are missing"):
        return None
    sections["strings"] = bytes(e["byte"] for e in sections["strings"])
    sections["dims"] = [e["value"] for e in sections["dims"]]
    return sections


def decode_record(f, rank, xxh3, checker):
    """Rank `rank`'s record: {"pieces": [...], "blobs": [...]} (empty if it is broken)."""
    begin, end = (int(v) for v in f["/cairn/record_offsets"][rank:rank + 2])
    data = f["/cairn/records"][begin:end].tobytes()
    empty = {"pieces": [], "blobs": []}
    if not checker.check(len(data) >= 40, f"record of rank {rank}: {len(data)} bytes"):
        return empty
    magic, writer, piece_size, blob_size, pieces, blobs, body = struct.unpack_from("<8sIHHQQQ",
                                                                                   data)
    if not checker.check(magic == b"CAIRNREC" and writer == rank and piece_size >= 24
                         and blob_size >= 32
                         and len(data) == 40 + pieces * piece_size + blobs * blob_size,
                         f"record of rank {rank}: magic {magic!r}, rank {writer}, {pieces} x "
                         f"{piece_size} + {blobs} x {blob_size} entry bytes in {len(data)} bytes"):
        return empty
    if xxh3:
        got = "%016x" % xxh3(data[40:])
        checker.check(got == "%016x" % body, f"record of rank {rank}: body checksum mismatch: "
                      f"header {body:016x}, data {got}")
    return {"pieces": elements(data, PIECE_ENTRY, piece_size, pieces, 40),
            "blobs": elements(data, BLOB_ENTRY, blob_size, blobs, 40 + pieces * piece_size)}


def escape(name):
    return name.replace(".", "..").replace("/", ".S")


def node_paths(s):
    def text(e):
        return escape(s["strings"][e["name_offset"]:e["name_offset"] + e["name_length"]].decode())
    first_edge, first_slot = {}, {}
    for e in s["edges"]:
        first_edge.setdefault(e["child"], e)
    for e in s["slots"]:
        if e["variable"] < e["slot"] and e["optimizer"] < e["slot"]:
            first_slot.setdefault(e["slot"], e)
    paths = [""]
    for i in range(1, len(s["nodes"])):
        if i in first_edge:
            e = first_edge[i]
            paths.append(f"{paths[e['parent']]}/{text(e)}" if e["parent"] else text(e))
        else:
            e = first_slot[i]
            paths.append(f"{paths[e['variable']]}/.OPTIMIZER_SLOT/{paths[e['optimizer']]}/"
                         f"{text(e)}")
    return paths


def block_range(extent, parts, i):
    q, extra = divmod(extent, parts)
    begin = i * q + min(i, extra)
    return begin, begin + q + (1 if i < extra else 0)


def writer_boxes(s, t, shape, params, w, world_size):
    if t["layout"] == 1 and not shape:
        return [([], [])] if w == 0 else []
    if t["layout"] in (1, 2):
        axes, grid = ([params[0]], [world_size]) if t["layout"] == 1 else (
            list(range(len(params))), params)
        offset, count, rest = [0] * len(shape), list(shape), w
        for a, g in reversed(list(zip(axes, grid))):  # row-major: the last grid axis is fastest
            begin, end = block_range(shape[a], g, rest % g)
            rest //= g
            if begin == end:
                return []
            offset[a], count[a] = begin, end - begin
        return [(offset, count)]
    if t["layout"] == 3:
        n, d = len(shape), s["dims"]
        return [(d[b["at"]:b["at"] + n], d[b["at"] + n:b["at"] + 2 * n])
                for b in s["boxes"][t["param"]:t["param"] + t["param_count"]] if b["rank"] == w]
    return []


def split_box(offset, count, esize, limit):
    if not count:
        return [([], [])]
    if 0 in count:
        return []
    s, size = len(count) - 1, esize
    while s > 0 and size * count[s] <= limit:
        size, s = size * count[s], s - 1
    k = max(1, limit // size)
    return [([o + i for o, i in zip(offset, outer)] + [offset[s] + b] + list(offset[s + 1:]),
             [1] * s + [min(k, count[s] - b)] + list(count[s + 1:]))
            for outer in itertools.product(*(range(c) for c in count[:s]))
            for b in range(0, count[s], k)]


def manifest_2x(f, header, mark, xxh3, checker):
    """The header plus 1.x-style "tensors" and "states" lists built from the table and every
    rank's record, or None if the table cannot be decoded."""
    ok = checker.check("table_bytes" in mark and "table_xxh3" in mark,
                       "the commit mark of a 2.x file has no table_bytes or table_xxh3")
    table = f["/cairn/table"][()].tobytes()
    if ok:
        checker.check(len(table) == mark["table_bytes"], f"/cairn/table has {len(table)} bytes, "
                      f"commit mark says {mark['table_bytes']}")
        if xxh3:
            got = "%016x" % xxh3(table)
            checker.check(got == mark["table_xxh3"],
                          f"table checksum {got} != commit mark {mark['table_xxh3']}")
    s = decode_table(table, checker)
    if s is None:
        return None
    world = header["world_size"]
    offsets = [int(v) for v in f["/cairn/record_offsets"][()]]
    checker.check(len(offsets) == world + 1 and offsets == sorted(offsets) and offsets[0] == 0
                  and offsets[-1] == f["/cairn/records"].shape[0],
                  f"/cairn/record_offsets {offsets} do not divide /cairn/records among {world} "
                  f"ranks")
    records = [decode_record(f, r, xxh3, checker) for r in range(world)]
    paths = node_paths(s)
    manifest = dict(header, tensors=[], states=[])
    replicated = iter(s["replicated"])
    next_piece = [0] * world  # per writer: its next piece entry
    for i, t in enumerate(s["tensors"]):
        shape = s["dims"][t["shape"]:t["shape"] + t["ndim"]]
        params = s["dims"][t["param"]:t["param"] + t["param_count"]]
        dtype, packed = DTYPES[t["dtype"]], t["storage"] == 1
        esize = np.dtype(PACKED[dtype]).itemsize
        key = paths[t["node"]] + "/.ATTRIBUTES/VARIABLE_VALUE"
        layout = ["replicated", f"block(axis={params[0] if params else '?'})",
                  "grid(" + "x".join(map(str, params)) + ")",
                  f"explicit({t['param_count']} boxes)"][t["layout"]]

        def pieces_of(offset, count):
            if math.prod(count) == 0:
                return []
            return [(offset, count)] if packed else split_box(offset, count, esize,
                                                               header["piece_bytes"])

        boxes = []
        if t["layout"] == 0:  # one box per piece, written by rank (p + t) mod N
            for p, (offset, count) in enumerate(pieces_of([0] * len(shape), shape)):
                e = next(replicated, None)
                if not checker.check(e is not None and (e["tensor"], e["piece"]) == (i, p),
                                     f"{key}: replicated entry {e} where piece {p} belongs"):
                    break
                boxes.append({"rank": (p + i) % world, "offset": offset, "count": count,
                              "pieces": [{"offset": offset, "count": count,
                                          "xxh3": "%016x" % e["xxh3"],
                                          "packed_offset": e["packed_offset"]}]})
        for w in range(world if t["layout"] else 0):
            number = 0
            for offset, count in writer_boxes(s, t, shape, params, w, world):
                box = {"rank": w, "offset": offset, "count": count, "pieces": []}
                for po, pc in pieces_of(offset, count):
                    entries = records[w]["pieces"]
                    e = entries[next_piece[w]] if next_piece[w] < len(entries) else None
                    if not checker.check(e is not None and (e["tensor"], e["piece"]) == (i, number),
                                         f"{key}: record of rank {w} has entry {e} where piece "
                                         f"{number} belongs"):
                        break
                    next_piece[w] += 1
                    number += 1
                    box["pieces"].append({"offset": po, "count": pc, "xxh3": "%016x" % e["xxh3"],
                                          "packed_offset": e["packed_offset"]})
                boxes.append(box)
        entry = {"key": key, "dtype": dtype, "shape": shape, "layout": layout,
                 "storage": "packed" if packed else "dataset", "boxes": boxes}
        if not packed:
            entry["dataset"] = "/tensors/" + key
        manifest["tensors"].append(entry)
    checker.check(next(replicated, None) is None, "the replicated section has extra entries")
    for w in range(world):
        checker.check(next_piece[w] == len(records[w]["pieces"]),
                      f"record of rank {w}: {len(records[w]['pieces'])} piece entries, the "
                      f"layouts give {next_piece[w]}")
    global_blobs = iter(s["global_blobs"])
    next_blob = [0] * world
    for i, st in enumerate(s["states"]):
        blobs = []
        if st["scope"] == 1:
            b = next(global_blobs, None)
            if checker.check(b is not None and b["state"] == i, f"state {i}: global blob {b}"):
                blobs.append({"rank": b["writer"], "packed_offset": b["packed_offset"],
                              "bytes": b["bytes"], "xxh3": "%016x" % b["xxh3"]})
        else:
            for w in range(world):
                entries = records[w]["blobs"]
                b = entries[next_blob[w]] if next_blob[w] < len(entries) else None
                if checker.check(b is not None and b["state"] == i,
                                 f"state {i}: record of rank {w} has blob {b}"):
                    next_blob[w] += 1
                    blobs.append({"rank": w, "packed_offset": b["packed_offset"],
                                  "bytes": b["bytes"], "xxh3": "%016x" % b["xxh3"]})
        manifest["states"].append({"key": paths[st["node"]] + "/.ATTRIBUTES/STATE",
                                   "scope": ["per_rank", "global"][st["scope"]], "blobs": blobs})
    return manifest


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
    # Integers as integers (u64 and i64 values beyond 2^53); bf16 is read as float32.
    want = np.asarray(value_of(index)).astype("<f4" if dtype_name == "bf16" else PACKED[dtype_name])
    bad = np.flatnonzero(array.reshape(-1) != want.reshape(-1))
    if checker.check(bad.size == 0,
                     f"{key}: {bad.size} of {array.size} elements differ from the writer's values"
                     + (f"; first at flat index {bad[0]}: {array.reshape(-1)[bad[0]]!r} != "
                        f"{want.reshape(-1)[bad[0]]!r}" if bad.size else "")):
        return array.size
    return 0


def read_checkpoint(path, args, expected, xxh3, checker):
    """Every check on one checkpoint; failures go to `checker`."""
    expected_tensors, expected_states, expected_counter = expected
    with h5py.File(path, "r") as f:
        # The commit mark first: nothing else in the file is trusted without it.
        if not checker.check("cairn_commit" in f.attrs, "root attribute cairn_commit is missing"):
            return 1
        mark = json.loads(read_text_attribute(f, "cairn_commit"))
        print(f"  commit mark: {mark}")
        cairn_format = read_text_attribute(f, "cairn_format")
        checker.check(cairn_format.startswith(("cairn-checkpoint 1.", "cairn-checkpoint 2.")),
                      f"cairn_format is {cairn_format!r}")
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
        major = manifest["format_version"].split(".")[0]
        checker.check(major in ("1", "2"),
                      f"format_version {manifest['format_version']!r} is not 1.x or 2.x")
        checker.check(cairn_format == "cairn-checkpoint " + manifest["format_version"],
                      f"cairn_format {cairn_format!r} disagrees with the header's "
                      f"{manifest['format_version']!r}")
        if "part" in manifest:  # format 2.1: one node's part of a node-local checkpoint
            part = manifest["part"]
            checker.check(False, f"part {part['index'] + 1} of {part['count']} of a node-local "
                          f"checkpoint (ranks {part['writers']} of {manifest['world_size']}): "
                          "this reader checks whole checkpoints only; read the shared file")
            return 1
        if major == "2":  # the header, the table and the records
            manifest = manifest_2x(f, manifest, mark, xxh3, checker)
            if manifest is None:
                return 1
            print(f"  table: {mark['table_bytes']} bytes; records: "
                  f"{f['/cairn/records'].shape[0]} bytes from {manifest['world_size']} ranks")
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

        # Format 1.1 and later: /cairn/packed_ranks bounds every rank's packed pieces and blobs.
        if manifest["format_version"] == "1.0":
            checker.check("packed_ranks" not in f["/cairn"], "format 1.0 has /cairn/packed_ranks")
        elif manifest["packed_bytes"] > 0 and checker.check("packed_ranks" in f["/cairn"],
                                                           "/cairn/packed_ranks is missing"):
            bounds = [int(v) for v in f["/cairn/packed_ranks"][()]]
            checker.check(len(bounds) == args.world_size + 1 and bounds[0] == 0
                          and bounds[-1] == manifest["packed_bytes"]
                          and bounds == sorted(bounds),
                          f"/cairn/packed_ranks {bounds} is not the rank regions of "
                          f"{manifest['packed_bytes']} bytes over {args.world_size} ranks")
            outside = 0
            ranges = [(b["rank"], p["packed_offset"], p["packed_offset"]
                       + math.prod(p["count"]) * np.dtype(PACKED[t["dtype"]]).itemsize)
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



def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="+")
    parser.add_argument("--writer", choices=sorted(WRITERS), required=True)
    parser.add_argument("--step", type=int, default=1, help="crash_saver: the step saved")
    parser.add_argument("--expected", help="golden: the expected.json of the golden files")
    parser.add_argument("--world-size", type=int, required=True, help="ranks of the saving job")
    parser.add_argument("--require-checksums", action="store_true",
                        help="fail if no XXH3 implementation is available")
    args = parser.parse_args()

    checker = Checker()
    xxh3, how = load_xxh3()
    print(f"h5py_read: {' '.join(args.file)} (writer {args.writer}); h5py {h5py.version.version}, "
          f"numpy {np.__version__}")
    if xxh3:
        print(f"  checksums: verified with {how}")
    else:
        print(f"  checksums: NOT verified: {how}")
        checker.check(not args.require_checksums, "--require-checksums: no XXH3 implementation")
    for path in args.file:
        print(f"  {path}:")
        read_checkpoint(path, args, WRITERS[args.writer](args, path), xxh3, checker)

    if checker.failures:
        print(f"h5py_read: FAILED: {len(checker.failures)} mismatches")
        return 1
    print("h5py_read: OK: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
