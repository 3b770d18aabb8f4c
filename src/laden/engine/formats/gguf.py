"""`.gguf` (llama.cpp): the magic, the version, the header's counts, every metadata entry and
tensor description, and each tensor's bytes inside the file.

The layout, from the GGUF specification: "GGUF", a uint32 version, the tensor count and the
metadata count (uint64; uint32 in version 1), the metadata as key / type / value, the tensor
descriptions (name, dimensions, ggml type, offset), then the tensor data at the next multiple
of `general.alignment` (32 unless the metadata says otherwise). Values are skipped, not read:
only keys, names and numbers are.
"""

from __future__ import annotations

import math

from .reading import Broken, Cursor, FileView, counted, quoted

KIND = "GGUF"
MAGIC = b"GGUF"
KNOWN_VERSIONS = (1, 2, 3)
MAX_DIMENSIONS = 4
MAX_NAME = 65536
"""Keys and tensor names are short; a longer one means the lengths are damaged."""
VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""Bytes of each fixed-size metadata value type (uint8 ... float64)."""
STRING, ARRAY, UINT32 = 8, 9, 4
BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136),
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17),
}
"""ggml type -> (elements per block, bytes per block). A type not listed (a newer one) has its
offset checked, not its size."""


def check(view: FileView) -> tuple[str, str]:
    """(KIND, what the file holds); `Broken` when it is not a whole GGUF file."""
    if view.size < 4 or view.read(0, 4, "the magic") != MAGIC:
        raise Broken(f"it does not start with the GGUF magic (it starts with "
                     f"{view.head(4).hex(' ') or 'nothing'})")
    cursor = Cursor(view, 4)
    version = cursor.number("I", "the version")
    if version & 0xFFFF == 0 and version >> 16:  # written on a big-endian machine
        cursor.order = ">"
        version = int.from_bytes(version.to_bytes(4, "little"), "big")
    if version not in KNOWN_VERSIONS:
        if 0 < version < 256:
            return KIND, (f"version {version}, newer than laden reads: only the magic and "
                          "version were checked")
        raise Broken(f"the version field holds {version}, which is no GGUF version: the "
                     "header is damaged")
    count = "I" if version == 1 else "Q"
    tensors = cursor.number(count, "the tensor count")
    entries = cursor.number(count, "the metadata count")
    # The smallest entry is a key length, a type and a one-byte value; the smallest tensor
    # description an empty name, one dimension, a type and an offset.
    if entries * 9 > cursor.left:
        raise Broken(f"the header says {entries:,} metadata entries, more than the rest of the "
                     f"file ({cursor.left:,} bytes) could hold")
    if tensors * 28 > cursor.left:
        raise Broken(f"the header says {tensors:,} tensors, more than the rest of the file "
                     f"({cursor.left:,} bytes) could hold")
    reader = _Reader(cursor, count)
    alignment = 32
    for index in range(entries):
        key = reader.name(f"the key of metadata entry {index + 1:,}")
        kind = cursor.number("I", f"the type of {quoted(key)}")
        if key == "general.alignment" and kind == UINT32:
            alignment = cursor.number("I", "general.alignment")
            if alignment == 0 or alignment & (alignment - 1):
                raise Broken(f"general.alignment is {alignment}, not a power of two")
        else:
            reader.skip_value(kind, quoted(key))
    described = [reader.tensor(index) for index in range(tensors)]
    start = -(-cursor.offset // alignment) * alignment
    for name, dimensions, ggml_type, offset in described:
        _fits(name, dimensions, ggml_type, offset, start, alignment, view.size)
    return KIND, (f"version {version}, {counted(tensors, 'tensor')}, "
                  f"{counted(entries, 'metadata entry', 'metadata entries')}")


class _Reader:
    def __init__(self, cursor: Cursor, count: str) -> None:
        self.cursor = cursor
        self.count = count  # lengths and counts: 32 bits in version 1, 64 after

    def length(self, what: str) -> int:
        return self.cursor.number(self.count, what)

    def name(self, what: str) -> str:
        size = self.length(f"the length of {what}")
        if size > MAX_NAME:
            raise Broken(f"{what} at byte {self.cursor.offset:,} says it is {size:,} bytes "
                         "long: the header is damaged")
        return self.cursor.take(size, what).decode("utf-8", "replace")

    def skip_value(self, kind: int, key: str, depth: int = 0) -> None:
        cursor = self.cursor
        if kind in VALUE_SIZES:
            cursor.skip(VALUE_SIZES[kind], f"the value of {key}")
        elif kind == STRING:
            cursor.skip(self.length(f"the length of {key}"), f"the value of {key}")
        elif kind == ARRAY and depth < 4:
            item = cursor.number("I", f"the item type of {key}")
            items = self.length(f"the length of {key}")
            if item in VALUE_SIZES:
                cursor.skip(items * VALUE_SIZES[item], f"the values of {key}")
                return
            if items * 8 > cursor.left:
                raise Broken(f"{key} says it holds {items:,} items, more than the rest of the "
                             "file could hold")
            for _ in range(items):
                self.skip_value(item, key, depth + 1)
        else:
            raise Broken(f"{key} has value type {kind}, which GGUF does not define (at byte "
                         f"{cursor.offset - 4:,})")

    def tensor(self, index: int) -> tuple[str, list[int], int, int]:
        cursor = self.cursor
        name = self.name(f"the name of tensor {index + 1:,}")
        label = f"tensor {quoted(name)}"
        count = cursor.number("I", f"the number of dimensions of {label}")
        if not 1 <= count <= MAX_DIMENSIONS:
            raise Broken(f"{label} has {count} dimensions; GGUF allows 1 to {MAX_DIMENSIONS}")
        dimensions = [cursor.number("Q", f"a dimension of {label}") for _ in range(count)]
        ggml_type = cursor.number("I", f"the type of {label}")
        offset = cursor.number("Q", f"the offset of {label}")
        return name, dimensions, ggml_type, offset


def _fits(name: str, dimensions: list[int], ggml_type: int, offset: int, start: int,
          alignment: int, size: int) -> None:
    label = f"tensor {quoted(name)}"
    if offset % alignment:
        raise Broken(f"{label} is at offset {offset:,}, not a multiple of the alignment "
                     f"({alignment})")
    begin = start + offset
    length = 0
    block = BLOCKS.get(ggml_type)
    if block is not None:
        per_block, block_bytes = block
        if dimensions[0] % per_block:
            raise Broken(f"{label} has rows of {dimensions[0]:,} elements, not a multiple of "
                         f"its type's block of {per_block}")
        length = math.prod(dimensions) // per_block * block_bytes
    if begin + length > size:
        raise Broken(f"{label} ends at byte {begin + length:,} but the file has "
                     f"{size:,} bytes")
