"""The pinned local file as a file object, for a service's SDK that sends a file whole.

The SDK reads it as any file (read, seek, tell: huggingface_hub rewinds it to retry a
request); each read is where laden keeps its hand on the upload: it stops the read when the
transfer is paused or cancelled, waits for the rate limit, counts the bytes taken as the
progress (what the HTTP client has taken to send), and at the last byte checks that the file
is still the one pinned, so a changed file fails the request before it ends.
"""

from __future__ import annotations

import io
import os
import time
from typing import TYPE_CHECKING

from ...core.errors import Cancelled
from .. import events
from . import comparing

if TYPE_CHECKING:
    from ..seam import Run
    from .local import LocalFile

SAMPLE_EVERY = 0.25
"""Seconds between speed samples while the SDK reads (the coordinator's monitor's tick)."""


class PinnedReader(io.BufferedIOBase):
    """`local`, read for `run`'s transfer (see the module's docstring)."""

    def __init__(self, local: LocalFile, run: Run) -> None:
        super().__init__()
        self._local = local
        self._run = run
        self._position = 0
        self._sent = 0
        """Bytes taken since the SDK last rewound: the progress (a seek alone is not)."""
        self._sampled = 0.0
        self._live = run.connection(0)
        self._live.last_status = "sending"
        self._live.start, self._live.end = 0, local.size

    # -- what an SDK asks of a file ----------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._local.size}
        # Not told as progress: the HTTP client seeks to the end to learn the length.
        self._position = max(0, base[whence] + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        left = self._local.size - self._position
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        run = self._run
        if run.stop_event.is_set():
            raise Cancelled(run.stop_reason or "stopped")
        want = min(want, run.limits.read_size(want)) if size is not None and size >= 0 else want
        buffer = bytearray(want)
        view = memoryview(buffer)
        reader = self._local.open_range(self._position, self._position + want)
        got = 0
        while got < want:
            got += reader.readinto(view[got:])
        run.limits.consume(got, run.stop_event)
        self._position += got
        self._sent = self._position
        if self._position >= self._local.size:
            self._local.check()  # the last byte: still the file pinned, or no request ends
        self._told()
        return bytes(buffer)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    # -- progress ----------------------------------------------------------------------------

    def _told(self, *, last: bool = False) -> None:
        """Tell the bytes taken as the bytes sent: a retry that rewinds the file shows it."""
        live, download = self._live, self._run.download
        live.position = live.bytes = self._sent
        now = time.monotonic()
        if not last and now - self._sampled < SAMPLE_EVERY:
            return
        self._sampled = now
        download.sample(now, streamed=self._sent)
        tick = download.tick(now, last=last)
        if tick is not None:
            self._run.emit(events.Progress.of_tick(tick, download))

    def finished(self) -> None:
        """The SDK is done with the file: its last numbers are told, its connection goes."""
        self._told(last=True)
        self._run.drop_connection(0)


def sha256_of(local: LocalFile, run: Run) -> str:
    """The file's SHA-256 in hex, read once (stopping when the transfer stops)."""
    return comparing.digests(local, local.pinned, ["sha256"], run.stop_event)["sha256"]


def git_blob_id(local: LocalFile, run: Run) -> str:
    """The id git gives the file's content as a blob: sha1 of "blob SIZE\\0" and the bytes."""
    return comparing.digests(local, local.pinned, ["git-sha1"], run.stop_event)["git-sha1"]
