"""Checksums computed while the download runs, so verifying costs little extra time.

A hash must see the file's bytes in order. When a checksum is to be checked, the plan hands
out pieces front to back (`SegmentPlan.split_for(in_order=...)`), so the finished part grows
from the first byte, and this thread trails just behind it, reading the new bytes back from the
page cache (or, when the download writes direct, straight from the disk: see `direct`). When
the last connection ends, only the last few pieces are left to hash, instead of the whole file
(sha256 runs at about 1.6 GiB/s here: a 2 GiB file would add 1.3 s).
"""

from __future__ import annotations

import os
import queue
import threading

from . import direct
from .segments import SegmentPlan
from .verify import READ_SIZE, Hasher, algorithm_name, new_hasher

POLL = 0.02
BUFFERS = 3


class TrailingHasher:
    def __init__(self, path: str, algorithms: set[str], plan: SegmentPlan, size: int, *,
                 direct_io: bool = False) -> None:
        self._path = path
        self._direct_io = direct_io
        self._plan = plan
        self._size = size
        self._hashers: dict[str, Hasher] = {
            algorithm_name(a): new_hasher(a, size=size) for a in algorithms
        }
        self.hashed = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="laden-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Read the finished prefix back in order; a second thread hashes what was read, so
        the next read (from the disk, when writes go direct) overlaps the hashing."""
        free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        read: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
        digesting = threading.Thread(target=self._digest, args=(read, free),
                                     name="laden-hash-digest", daemon=True)
        try:
            fd, aligned = self._open()
            try:
                for _ in range(BUFFERS):
                    free.put(direct.aligned_buffer(READ_SIZE) if aligned
                             else memoryview(bytearray(READ_SIZE)))
                digesting.start()
                self._read_along(fd, aligned, free, read)
            finally:
                os.close(fd)
        except BaseException as exc:  # reported by digests(); never kills the download
            self._error = exc
        finally:
            read.put(None)
            if digesting.is_alive():
                digesting.join()

    def _open(self) -> tuple[int, bool]:
        """A descriptor to read the partial file back through; True when it reads direct."""
        if self._direct_io:
            fd = direct.open_direct(self._path, read=True)
            if fd is not None:
                return fd, True
        return os.open(self._path, os.O_RDONLY | os.O_CLOEXEC), False

    def _read_along(self, fd: int, aligned: bool, free: queue.SimpleQueue[memoryview],
                    read: queue.SimpleQueue[tuple[memoryview, int] | None]) -> None:
        position = 0
        while position < self._size:
            ready = self._plan.done_prefix()
            want = min(READ_SIZE, ready - position)
            if aligned and ready < self._size:
                want -= want % direct.ALIGN  # direct reads end on a block, except at the end
            if want <= 0:
                if self._stop.wait(POLL) and self._plan.done_prefix() <= position:
                    return  # stopped before the file was complete
                continue
            view = free.get()
            # A direct read asks for whole blocks; the file's last one comes back short.
            ask = want + (-want % direct.ALIGN if aligned else 0)
            n = min(os.preadv(fd, [view[:ask]], position), want)
            if n <= 0:
                raise OSError(f"could not read back byte {position} of the partial file")
            read.put((view, n))
            position += n

    def _digest(self, read: queue.SimpleQueue[tuple[memoryview, int] | None],
                free: queue.SimpleQueue[memoryview]) -> None:
        while (item := read.get()) is not None:
            view, n = item
            try:
                if self._error is None:
                    for hasher in self._hashers.values():
                        hasher.update(view[:n])
                    self.hashed += n
            except BaseException as exc:  # the reader must not wait for a buffer forever
                self._error = exc
            free.put(view)

    def digests(self) -> dict[str, str] | None:
        """The digests once every byte is hashed; None when that could not happen."""
        self._stop.set()
        self._thread.join()
        if self._error is not None or self.hashed != self._size:
            return None
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    def abandon(self) -> None:
        self._stop.set()
        self._thread.join()
