"""An upload's parts: their size, and the byte loop's sink that sends each one once it is whole.

The byte loop (`connection`) writes a part's bytes in order into its buffer here; the last byte
sends the part, and only the service's answer makes it count (`UploadState.send`, which
journals it). A part whose sending fails is given back whole by the plan (`SegmentPlan` with
`piece_size`), so its next try starts again at its first byte, with a fresh buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import crc32c

if TYPE_CHECKING:
    from .state import UploadState

MiB = 1024 * 1024
PART_SIZE = 8 * MiB
"""The part size of files up to PART_SIZE * max_parts (80,000 MiB on S3): what s3transfer and
the AWS CLI use."""


def part_size(size: int, min_part: int, max_parts: int) -> int:
    """The part size for a file of `size` bytes: PART_SIZE, or more for a file that would need
    more than `max_parts` parts, in whole MiB; never below the service's `min_part`."""
    wanted = max(PART_SIZE, min_part, -(-size // max_parts))
    return -(-wanted // MiB) * MiB


class PartSink:
    """The upload's piece sink."""

    direct = False

    def __init__(self, upload: UploadState) -> None:
        self._upload = upload
        self._lock = threading.Lock()
        self._filling: dict[int, tuple[bytearray, list[int]]] = {}
        """Part number -> its buffer, and how many of its bytes are written."""
        self._spare: list[bytearray] = []
        """Buffers of whole-size parts already sent, for the next parts: a new 8 MiB
        bytearray is zeroed and then faulted in page by page, for every part."""

    def place_for(self, offset: int, n: int) -> memoryview:
        """Where the byte loop reads the `n` bytes at `offset`: in the part's own buffer, so
        they are not read into the connection's buffer and copied over (a copy of every byte
        with the GIL held). The plan hands out whole parts, so `n` never crosses a part's end."""
        body, _filled, start = self._buffer(offset, lambda _body: False)
        at = offset - start
        return memoryview(body)[at:at + n]

    def write(self, data: memoryview, offset: int, *, placed: bool = False) -> None:
        upload = self._upload
        mine = getattr(data, "obj", None)
        body, filled, start = self._buffer(offset, lambda body: body is mine)
        end = start + len(body)
        # One connection writes a part, in order: the copy needs no lock.
        at = offset - start
        if at != filled[0]:
            raise AssertionError(f"part {upload.part_at(offset)}: a write at {offset} after "
                                 f"{start + filled[0]}")
        if mine is not body:  # read elsewhere (a reader that fills its own buffer): copy
            body[at:at + len(data)] = data
        filled[0] = at + len(data)
        if filled[0] == end - start:
            number = upload.part_at(offset)
            with self._lock:
                self._filling.pop(number, None)
            try:
                upload.send(number, body, crc32c.of(body))
            finally:  # sent or not, the request is over: nothing reads the buffer any more
                if len(body) == upload.part_size:
                    with self._lock:
                        self._spare.append(body)

    def _buffer(self, offset: int, placed: Callable[[bytearray], bool]
                ) -> tuple[bytearray, list[int], int]:
        """The buffer of the part `offset` is in, how many of its bytes are written, and the
        part's first byte. A try starts at the part's first byte with a fresh buffer, unless
        its bytes were `placed` in the one `place_for` just gave it."""
        upload = self._upload
        number = upload.part_at(offset)
        start, end = upload.part_range(number)
        with self._lock:
            there = self._filling.get(number)
            if offset == start and (there is None or not placed(there[0])):
                spare = self._spare.pop() if self._spare and end - start == len(
                    self._spare[-1]) else None
                there = self._filling[number] = (spare or bytearray(end - start), [0])
            assert there is not None
            return there[0], there[1], start

    def splice_in(self, pipe: int, count: int, offset: int) -> None:
        """Never called: the byte loop splices only from a reader that offers it (a socket's),
        and an upload reads a local file; a part is sent from the memory it was read into."""
        raise TypeError("an upload's parts are sent from memory, not spliced")
