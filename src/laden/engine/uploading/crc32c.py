"""CRC32C of parts, and of the whole file from its parts' without reading it again.

Parts are sent in any order over several connections, and some were sent by an earlier run, so
the whole file's CRC32C (what the service checks at the commit) is combined from the parts'
CRCs, as zlib's `crc32_combine` does: appending `n` bytes to a CRC register is a linear map over
GF(2), worked out once per part length and cached (an upload has two: the parts', the last's).
"""

from __future__ import annotations

import base64
import ctypes
import functools

import google_crc32c  # type: ignore[import-untyped]

_POLY = 0x82F63B78
"""CRC32C's polynomial, bit-reversed as the register holds it."""


def of(data: bytes | bytearray | memoryview) -> int:
    return extend(0, data)


def extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    if isinstance(data, bytes):
        return int(google_crc32c.extend(crc, data))
    if _in_place is not None:
        view = memoryview(data)
        if not view.readonly and view.c_contiguous:
            if not view.nbytes:
                return crc
            # from_buffer: the C function reads the part where it is, with the GIL released
            return int(_in_place(crc, (ctypes.c_char * view.nbytes).from_buffer(view),
                                 view.nbytes))
    # The extension's functions take bytes only (no bytearray, no view of one): a copy.
    return int(google_crc32c.extend(crc, bytes(data)))


def _find_in_place() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """`crc32c_extend` of the C library google-crc32c wraps, to be called on a part's own
    buffer: through the extension each 8 MiB part was first copied whole into bytes, which cost
    a tenth of a CPU second per GiB sent and a part's size of memory per connection. None when
    the library cannot be reached this way (google-crc32c's pure-Python build, another
    platform's linking) or answers wrongly: `extend` then copies, as before."""
    try:
        from google_crc32c import _crc32c  # type: ignore[import-untyped]

        # The extension links the library: looking the symbol up through it finds the
        # library's, whatever its file is called in this wheel.
        function = ctypes.CDLL(_crc32c.__file__).crc32c_extend
    except (ImportError, OSError, AttributeError):
        return None
    function.restype = ctypes.c_uint32
    function.argtypes = (ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t)
    probe = bytearray(b"123456789")
    found = function(0, (ctypes.c_char * len(probe)).from_buffer(probe), len(probe))
    return function if found == 0xE3069283 == google_crc32c.value(bytes(probe)) else None


_in_place = _find_in_place()


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
