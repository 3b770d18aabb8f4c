"""Checksums computed while the download runs, so verifying costs little extra time.

A hash must see the file's bytes in order. When a checksum is to be checked, the plan hands
out small pieces front to back (`SegmentPlan.split_for(in_order=...)`), so every connection works
just ahead of the first missing byte, and this module hashes along behind them.

Where the bytes come from:

- From a ring of WINDOW bytes in memory. Bytes that fall in a window just ahead of the hash
  position are read from the network straight into the ring, at their file offset modulo
  WINDOW (`place_for`), written to the file from there, and hashed from there (`keep`). Reading
  them back from the disk instead cost as much disk time as writing them (direct reads run at
  about 1 GiB/s here), which halved the speed of a verified download; copying them from the
  connections' buffers into the ring cost 0.17 to 0.27 CPU-seconds per 2 GiB, with the GIL
  held.
- From the partial file, for whatever the window did not hold: bytes written before a resume,
  bytes too far ahead when they arrived, and bytes moved by splice, which never pass through a
  buffer. The file is read back through the page cache, or straight from the disk when the
  download writes direct (see `direct`).

A reader thread decides where the next bytes come from and a digest thread hashes them, so a
read from the disk overlaps the hashing of the previous one.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
import time
from collections.abc import Callable

from ..core.checksums import algorithm_name
from . import direct
from .segments import SegmentPlan
from .verify import READ_SIZE, Hasher, new_hasher

POLL = 0.02
BUFFERS = 3
WINDOW = 32 << 20
"""Bytes ahead of the hash position held in memory: enough for the pieces in flight (16
connections × 2 MiB pieces), small enough to keep laden's memory under 100 MiB."""
MAX_WAIT = 0.5
"""How long a connection ahead of the window waits for room before leaving its bytes on disk."""

# (bytes to hash, what to do once they are hashed); None ends the digest thread.
_Item = tuple[list[memoryview], Callable[[], None]]


class TrailingHasher:
    def __init__(self, path: str, algorithms: set[str], plan: SegmentPlan, size: int, *,
                 direct_io: bool = False, window: int = WINDOW) -> None:
        self._path = path
        self._direct_io = direct_io
        self._plan = plan
        self._size = size
        self._hashers: dict[str, Hasher] = {
            algorithm_name(a): new_hasher(a, size=size) for a in algorithms
        }
        self.hashed = 0
        self.from_memory = 0  # bytes hashed from the window rather than read back
        # A whole number of pages when it wraps, so a place sits within its page as its bytes
        # do in the file; a window that holds the whole file never wraps.
        self._window = size if size <= window else max(direct.ALIGN, window - window % direct.ALIGN)
        self._ring = memoryview(mmap.mmap(-1, self._window))
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # bytes at the hash position
        # Connections waiting for the window to reach their bytes: (hash position they need,
        # their own wake-up), so a step of the hash wakes only those it makes room for.
        self._waiting_for_room: list[tuple[int, threading.Condition]] = []
        self._reader_waiting = False
        self._handed = 0  # bytes passed to the digest thread
        self._digested = 0  # bytes hashed: the ring is free from here on
        self._held: dict[int, int] = {}  # offset -> length of bytes in the ring
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="laden-hash", daemon=True)
        self._thread.start()

    # -- from the connections ------------------------------------------------------------

    def place_for(self, offset: int, n: int) -> memoryview | None:
        """Where a connection should read the `n` bytes bound for `offset`: their own place in
        the ring, so the hash takes them from there without a copy. None when the window does
        not reach that far within MAX_WAIT: the bytes then go to the connection's own buffer
        and are read back from the file later.

        The place is shorter than `n` where the ring wraps. It sits at the same place within a
        page as `offset`, so it can be written direct. What was read into it is handed back
        with `keep` before the plan counts those bytes as done, so the reader never goes to
        the disk for bytes that are in the ring.
        """
        at = offset % self._window
        n = min(n, self._window - at)
        with self._lock:
            # A connection far ahead waits for the hash to catch up, as long as that is
            # likely to be short: a connection that moves on leaves its bytes to be read back,
            # and when the window is full that is no longer the exception but the rule. The
            # wait is bounded, so a stalled first piece cannot hold every connection.
            deadline = time.monotonic() + MAX_WAIT
            while offset + n > self._digested + self._window:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                waiter = (offset + n - self._window, threading.Condition(self._lock))
                self._waiting_for_room.append(waiter)
                try:
                    waiter[1].wait(left)
                finally:
                    self._waiting_for_room.remove(waiter)
            if offset < self._handed:
                return None
            # This place is free: the window is [digested, digested + WINDOW), the bytes a lap
            # behind are hashed, and no other connection's bytes in the window share it.
            return self._ring[at : at + n]

    def keep(self, offset: int, n: int) -> None:
        """`n` bytes were read into the place `place_for(offset, ...)` gave, and written."""
        with self._lock:
            self._held[offset] = n
            if offset == self._handed and self._reader_waiting:
                self._arrived.notify()

    # -- the reader ----------------------------------------------------------------------

    def _run(self) -> None:
        free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        read: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        digesting = threading.Thread(target=self._digest, args=(read,),
                                     name="laden-hash-digest", daemon=True)
        try:
            fd, aligned = self._open()
            try:
                for _ in range(BUFFERS):
                    # Room for a read that starts and ends on whole blocks around the bytes.
                    free.put(direct.aligned_buffer(READ_SIZE + direct.ALIGN))
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
                    read: queue.SimpleQueue[_Item | None]) -> None:
        position = 0
        while position < self._size:
            with self._lock:
                # Every held run that starts here goes to the digest thread as one item.
                # Up to READ_SIZE at a time, so the window moves on while the hash runs.
                end = position
                while end - position < READ_SIZE and (n := self._held.pop(end, 0)):
                    end += n
                if end > position:
                    self._handed = end
                else:
                    # From the disk, but only up to the next held bytes: those are in the ring.
                    stop = min(self._plan.done_prefix(), position + READ_SIZE,
                               min((o for o in self._held if o > position), default=self._size))
                    if stop <= position:
                        if self._stop.is_set():
                            return  # stopped before the file was complete
                        self._reader_waiting = True
                        self._arrived.wait(POLL)
                        self._reader_waiting = False
                        continue
                    self._handed = stop
            if end > position:
                read.put((self._ring_views(position, end - position),
                          self._freed(end, end - position)))
                position = end
                continue
            buffer = free.get()
            # A direct read starts and ends on whole blocks; the file's last one comes back
            # short. Only the bytes in [position, stop) are used.
            skip = position % direct.ALIGN if aligned else 0
            ask = stop - position + skip
            ask += -ask % direct.ALIGN if aligned else 0
            got = os.preadv(fd, [buffer[:ask]], position - skip) - skip
            if got < stop - position:
                raise OSError(f"could not read back byte {position} of the partial file")
            read.put(([buffer[skip : skip + stop - position]],
                      self._freed(stop, 0, lambda b=buffer: free.put(b))))
            position = stop

    def _ring_views(self, offset: int, n: int) -> list[memoryview]:
        at = offset % self._window
        first = min(n, self._window - at)
        views = [self._ring[at : at + first]]
        if first < n:
            views.append(self._ring[: n - first])
        return views

    def _freed(self, end: int, from_memory: int,
               then: Callable[[], None] | None = None) -> Callable[[], None]:
        def done() -> None:
            with self._lock:
                self._digested = end
                self.from_memory += from_memory
                for needs, room in self._waiting_for_room:
                    if needs <= end:
                        room.notify()
            if then is not None:
                then()
        return done

    # -- the digest thread ---------------------------------------------------------------

    def _digest(self, read: queue.SimpleQueue[_Item | None]) -> None:
        while (item := read.get()) is not None:
            views, done = item
            try:
                if self._error is None:
                    for view in views:
                        for hasher in self._hashers.values():
                            hasher.update(view)
                        self.hashed += len(view)
            except BaseException as exc:  # the reader must not wait for a buffer forever
                self._error = exc
            done()

    # -- the transfer's side -------------------------------------------------------------

    def digests(self) -> dict[str, str] | None:
        """The digests once every byte is hashed; None when that could not happen."""
        self._end()
        if self._error is not None or self.hashed != self._size:
            return None
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    def abandon(self) -> None:
        self._end()

    def _end(self) -> None:
        self._stop.set()
        with self._lock:  # connections waiting for room go on at once, without a place
            for _, room in self._waiting_for_room:
                room.notify()
        self._thread.join()
