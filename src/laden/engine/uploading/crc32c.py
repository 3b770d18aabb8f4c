"""CRC32C of parts, and of the whole file from its parts' without reading it again.

Parts are sent in any order over several connections, and some were sent by an earlier run, so
the whole file's CRC32C (what the service checks at the commit) is combined from the parts'
CRCs, as zlib's `crc32_combine` does: appending `n` bytes to a CRC register is a linear map over
GF(2), worked out once per part length and cached (an upload has two: the parts', the last's).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

_POLY = 0x82F63B78
"""CRC32C's polynomial, bit-reversed as the register holds it."""


def of(data: bytes | bytearray | memoryview) -> int:
    return extend(0, data)


def extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    # The crc32c package reads any buffer where it is (a part's bytearray, a view of it) with
    # the GIL released; google-crc32c, which the GCS SDK brings, takes bytes only, and copying
    # each 8 MiB part for it cost a tenth of a CPU second per GiB and a part's memory per
    # connection.
    return int(_package().crc32c(data, value=crc))


@functools.cache
def _package() -> Any:
    # Imported on first use: the package reads its own version through importlib.metadata,
    # 20 ms that every `laden get` paid at start-up for code only uploads run.
    import crc32c  # type: ignore[import-untyped]

    return crc32c


def encoded(crc: int) -> str:
    """As S3, GCS and Azure write it: four big-endian bytes in base64."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def decoded(text: str) -> int:
    return int.from_bytes(base64.b64decode(text), "big")


def combine(first: int, second: int, second_length: int) -> int:
    """The CRC32C of A + B from the CRC32C of A, that of B and B's length."""
    return _apply(_appending(second_length), first) ^ second


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _compose(outer: tuple[int, ...], inner: tuple[int, ...]) -> tuple[int, ...]:
    """The map `inner` then `outer`."""
    return tuple(_apply(outer, column) for column in inner)


@functools.lru_cache(maxsize=16)
def _appending(length: int) -> tuple[int, ...]:
    """The map a CRC register goes through when `length` zero bytes pass through it."""
    step = (_POLY, *(1 << n for n in range(31)))  # one zero bit
    for _ in range(3):
        step = _compose(step, step)  # 2, 4, then 8 bits: one byte
    result = tuple(1 << n for n in range(32))
    while length:
        if length & 1:
            result = _compose(step, result)
        step = _compose(step, step)
        length >>= 1
    return result
