"""A minimal protocol-buffers wire-format reader, so that Caffe and TensorFlow files load
without either framework (or protoc-generated code).

Messages are read lazily: :func:`parse` maps field numbers to lists of raw values; callers
interpret them with the schema they know (``caffe.proto``, ``graph.proto``...).
"""

from __future__ import annotations

import struct
from collections import defaultdict

import numpy as np

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse(data: bytes | memoryview) -> dict[int, list[int | memoryview]]:
    """Field number -> list of values (ints for varint/fixed, memoryviews for length-delimited)."""
    buf = memoryview(data)
    out: dict[int, list[int | memoryview]] = defaultdict(list)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == LEN:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise ValueError(f"truncated field {field}: needs {n} bytes, {end - pos} left")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        out[field].append(value)
    return out


def string(value: int | memoryview) -> str:
    return bytes(value).decode("utf-8") if isinstance(value, memoryview) else str(value)


def packed_varints(values: list[int | memoryview]) -> list[int]:
    """A repeated integer field, packed or not."""
    out: list[int] = []
    for v in values:
        if isinstance(v, memoryview):
            pos = 0
            while pos < len(v):
                x, pos = _varint(v, pos)
                out.append(x)
        else:
            out.append(v)
    return out


def packed_floats(values: list[int | memoryview]) -> np.ndarray:
    """A repeated float field, packed (bytes) or one fixed32 per value."""
    parts = []
    for v in values:
        if isinstance(v, memoryview):
            parts.append(np.frombuffer(v, dtype="<f4"))
        else:
            parts.append(np.array([struct.unpack("<f", v.to_bytes(4, "little"))[0]], dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def signed(value: int, bits: int = 64) -> int:
    """Two's-complement reading of a varint (int32/int64 fields)."""
    return value - (1 << bits) if value >= 1 << (bits - 1) else value
