"""NumPy files, without numpy: `.npy` (a magic, a version, a header that is a Python literal,
then the array's bytes) and `.npz` (a zip of `.npy` members).

The header is read with `ast.literal_eval`, as numpy itself reads it: a literal, never code.
Each array's shape and dtype must account for exactly the bytes after its header. An array of
Python objects (dtype `O`) holds pickles; those are never read, so only its header is checked.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from collections.abc import Callable
from typing import BinaryIO

from .archives import open_zip, read_member
from .reading import Broken, FileView, counted, quoted

NPY_KIND = "NumPy array (.npy)"
NPZ_KIND = "NumPy archive (.npz)"
MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20
"""numpy writes headers of a few hundred bytes (structured dtypes: a few kilobytes)."""
_SIMPLE = re.compile(r"[<>|=]?([biufcmMSUVO])(\d*)(\[\w+\])?")


def check_npy(view: FileView) -> tuple[str, str]:
    """(kind, what the file holds); `Broken` when it is not a whole `.npy` file."""
    position = 0

    def read(length: int) -> bytes:
        nonlocal position
        data = view.read(position, length, "the .npy header")
        position += length
        return data

    header_size, item_size, shape = npy_header(read, "the file", NPY_KIND)
    _sized("the array", header_size, item_size, shape, view.size, NPY_KIND)
    return NPY_KIND, f"shape {tuple(shape)}"


def check_npz(view: FileView, handle: BinaryIO) -> tuple[str, str]:
    """(kind, what the file holds); `Broken` when it is not a whole `.npz` file."""
    archive = open_zip(view, handle, NPZ_KIND)
    infos = archive.infolist()
    for info in infos:
        name = quoted(info.filename)
        if not info.filename.endswith(".npy"):
            raise Broken(f"member {name} is not a .npy array", kind=NPZ_KIND)
        head = read_member(archive, info.filename, 12, NPZ_KIND)
        if head[:6] != MAGIC:
            raise Broken(f"member {name} does not start with the .npy magic", kind=NPZ_KIND)
        prefix = 10 if head[6:7] == b"\x01" else 12
        length = struct.unpack("<H" if prefix == 10 else "<I", head[8:prefix])[0] \
            if len(head) >= prefix else 0
        if length > MAX_HEADER:
            raise Broken(f"member {name} says its header is {length:,} bytes long",
                         kind=NPZ_KIND)
        data = read_member(archive, info.filename, prefix + length, NPZ_KIND)
        read = _reader(data, f"member {name} ends inside its .npy header")
        header_size, item_size, shape = npy_header(read, f"member {name}", NPZ_KIND)
        _sized(f"member {name}", header_size, item_size, shape, info.file_size, NPZ_KIND)
    return NPZ_KIND, counted(len(infos), "array")


def _reader(data: bytes, short: str) -> Callable[[int], bytes]:
    """`read(n)` over bytes already read, raising `Broken(short)` when they run out."""
    position = 0

    def read(size: int) -> bytes:
        nonlocal position
        chunk = data[position:position + size]
        if len(chunk) < size:
            raise Broken(short, kind=NPZ_KIND)
        position += size
        return chunk

    return read


def npy_header(read: Callable[[int], bytes], what: str,
               kind: str) -> tuple[int, int | None, list[int]]:
    """(bytes before the data, bytes per item or None when unknown, shape) of a `.npy` header,
    read through `read(n)`."""
    start = read(8)
    if start[:6] != MAGIC:
        raise Broken(f"{what} does not start with the .npy magic", kind=kind)
    major = start[6]
    if major == 1:
        (length,) = struct.unpack("<H", read(2))
    elif major in (2, 3):
        (length,) = struct.unpack("<I", read(4))
    else:
        raise Broken(f"{what} is .npy format version {major}, which numpy does not define",
                     kind=kind)
    if length > MAX_HEADER:
        raise Broken(f"{what} says its header is {length:,} bytes long", kind=kind)
    text = read(length).decode("utf-8" if major == 3 else "latin-1", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise Broken(f"{what} has a header that is not a Python literal", kind=kind) from None
    if (not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys()
            or not isinstance(header["shape"], tuple) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0
                for n in header["shape"])):
        raise Broken(f"{what} has a header without descr, fortran_order and shape",
                     kind=kind)
    prefix = 10 if major == 1 else 12
    return prefix + length, _item_size(header["descr"]), list(header["shape"])


def _item_size(descr: object) -> int | None:
    """Bytes per item of a simple dtype string ('<f4', '|b1', '<U8'); None for others."""
    if not isinstance(descr, str):
        return None  # a structured dtype: its size is not worked out here
    match = _SIMPLE.fullmatch(descr)
    if match is None or match.group(1) == "O" or not match.group(2):
        return None
    size = int(match.group(2))
    return 4 * size if match.group(1) == "U" else size


def _sized(what: str, header_size: int, item_size: int | None, shape: list[int], total: int,
           kind: str) -> None:
    if item_size is None:
        return
    expected = header_size + math.prod(shape) * item_size
    if expected != total:
        raise Broken(f"{what} has shape {tuple(shape)} of {item_size}-byte items, "
                     f"{expected:,} bytes with its header, but it has {total:,} bytes",
                     kind=kind)
