#!/usr/bin/env python3
"""Reads safetensors files exactly as the specification describes them, independently of
Chronos: u64 little-endian header size, JSON header, byte buffer fully covered by the tensors'
data_offsets with no holes or overlaps. Prints each file's tensor count; exits 1 on any fault.

Usage: check_safetensors.py FILE...
"""
import json
import struct
import sys

import numpy as np

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def check(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buffer = data[8 + n:]
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert end - begin == count * SIZES[info["dtype"]], f"{name}: size mismatch"
        if info["dtype"] in ("F32", "F16"):
            arr = np.frombuffer(buffer[begin:end], dtype=np.float32 if info["dtype"] == "F32" else np.float16)
            assert np.all(np.isfinite(arr)), f"{name}: non-finite values"
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        assert begin == cursor, f"{name}: hole or overlap at {begin} (expected {cursor})"
        cursor = end
    assert cursor == len(buffer), f"buffer has {len(buffer)} bytes, tensors cover {cursor}"
    return len(spans)


def main():
    bad = 0
    for path in sys.argv[1:]:
        try:
            print(f"{path}: {check(path)} tensors, valid")
        except Exception as e:  # noqa: BLE001 - report every fault as a failure
            print(f"{path}: INVALID: {e}")
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
