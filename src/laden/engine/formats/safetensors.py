"""`.safetensors`: an 8-byte little-endian header length, a JSON header, then the tensors' bytes.

The checks are the ones the safetensors library makes before it maps a file: the header fits
the file and is a JSON object, each tensor's `data_offsets` lie inside the data, its dtype and
shape account for exactly that many bytes, and the tensors cover the data with no gap, overlap
or trailing bytes. Only the header is read; the rest is arithmetic on the file's size.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from .reading import Broken, FileView, counted, quoted

KIND = "safetensors"
MAX_HEADER = 100_000_000
"""The safetensors library refuses larger headers, so a larger length means a damaged file."""
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "U16": 16, "I16": 16, "F16": 16, "BF16": 16,
    "U32": 32, "I32": 32, "F32": 32,
    "U64": 64, "I64": 64, "F64": 64, "C64": 64,
}
"""Bits per element. A dtype not listed (a newer one) has its offsets checked, not its size."""


def check(view: FileView) -> tuple[str, str]:
    """(KIND, what the file holds in a few words); `Broken` when it is not a whole safetensors
    file."""
    if view.size < 8:
        raise Broken(f"it has {view.size} bytes; a safetensors file starts with an 8-byte "
                     "header length")
    (length,) = struct.unpack("<Q", view.read(0, 8, "the header length"))
    if length > MAX_HEADER:
        raise Broken(f"the header length says {length:,} bytes, more than safetensors allows "
                     f"({MAX_HEADER:,}): this is not the start of a safetensors file")
    if 8 + length > view.size:
        raise Broken(f"the header is {length:,} bytes long but the file has {view.size:,} bytes")
    header = _header(view.read(8, length, "the header"))
    base = 8 + length
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                    isinstance(v, str) for v in entry.values()):
                raise Broken("the header's __metadata__ must map names to strings")
            continue
        begin, end = _tensor(name, entry, base, view.size)
        spans.append((begin, end, name))
    _contiguous(spans, base, view.size)
    return KIND, f"{counted(len(spans), 'tensor')}, header {length:,} bytes"


def _header(raw: bytes) -> dict[str, Any]:
    if not raw.startswith(b"{"):
        raise Broken("the header does not start with '{': it is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Broken(f"the header is not UTF-8 text (byte {8 + exc.start:,})") from None
    except json.JSONDecodeError as exc:
        raise Broken(f"the header is not valid JSON: {exc.msg} (line {exc.lineno}, "
                     f"column {exc.colno})") from None
    except RecursionError:
        raise Broken("the header's JSON is nested too deeply to be a safetensors header") \
            from None
    if not isinstance(header, dict):
        raise Broken("the header is not a JSON object")
    return header


def _tensor(name: str, entry: Any, base: int, size: int) -> tuple[int, int]:
    """The tensor's data span (relative to the data), checked against the file and its dtype."""
    label = f"tensor {quoted(name)}"
    if not isinstance(entry, dict):
        raise Broken(f"{label} is not described by a JSON object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise Broken(f"{label} has no dtype")
    if not isinstance(shape, list) or not all(_whole(n) for n in shape):
        raise Broken(f"{label} has no shape (a list of whole numbers)")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_whole, offsets))
            or offsets[0] > offsets[1]):
        raise Broken(f"{label} has no valid data_offsets ([begin, end] with begin <= end)")
    begin, end = offsets
    if base + end > size:
        raise Broken(f"{label} ends at byte {base + end:,} but the file has {size:,} bytes")
    bits = DTYPE_BITS.get(dtype)
    if bits is not None:
        total = math.prod(shape) * bits
        if total % 8:
            raise Broken(f"{label} is {dtype} {shape}: {total:,} bits, not a whole number "
                         "of bytes")
        if end - begin != total // 8:
            raise Broken(f"{label} is {dtype} {shape}, {total // 8:,} bytes, but its "
                         f"data_offsets span {end - begin:,} bytes")
    return begin, end


def _contiguous(spans: list[tuple[int, int, str]], base: int, size: int) -> None:
    """The tensors cover the data in one run, as the safetensors library requires."""
    position = 0
    for begin, end, name in sorted(spans):
        if begin < position:
            raise Broken(f"tensor {quoted(name)} starts at byte {base + begin:,}, inside the "
                         f"tensor before it (which ends at byte {base + position:,})")
        if begin > position:
            raise Broken(f"tensor {quoted(name)} starts at byte {base + begin:,}, but the "
                         f"tensor before it ends at byte {base + position:,}: "
                         f"{begin - position:,} bytes belong to no tensor")
        position = end
    if base + position != size:
        raise Broken(f"the tensors end at byte {base + position:,} but the file has "
                     f"{size:,} bytes: {size - base - position:,} bytes belong to no tensor")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
