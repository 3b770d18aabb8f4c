"""The whole file's MD5, for a service that keeps an MD5 of the object (Azure's Content-MD5)
rather than a CRC32C.

A CRC32C of the file is combined from its parts' (`crc32c`), but MD5 cannot be: it must see the
file's bytes in order, and parts are sent in any order over several connections. So a thread
reads the local file again, in order, along with the upload: it hashes up to AHEAD bytes past
how far the upload is done without a gap from the first byte, which covers the parts the
connections are reading and sending now. Those bytes are in the page cache (a file larger than
the memory is read from the disk once, not twice), and the hash is finished about when the last
part is, rather than starting on the parts sent together at the end only once the first of
them is acknowledged. A new attempt with the file unchanged keeps it; a
new process (a resume after a restart) hashes the done prefix again from the first byte, which
costs a read of the file rather than a hash state in the journal.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...core.errors import DiskError, LocalFileChanged
from . import comparing

if TYPE_CHECKING:
    from ...sources.uploads import Uploader
    from .local import LocalFile, Pin

READ_SIZE = 8 * 1024 * 1024
POLL = 0.05
AHEAD = 256 * 1024 * 1024
"""How far past the upload's done prefix the hash may read: the parts in flight (16
connections of 8 MiB parts), twice over."""


def wanted(uploader: Uploader) -> bool:
    """Whether the service keeps an MD5 of the whole object (an uploader that does not say
    keeps a CRC32C)."""
    return getattr(uploader, "whole_checksum", "crc32c") == "md5"


class TrailingMd5:
    """The MD5 of the pinned file at `path`, hashed up to AHEAD bytes past `done_prefix()`."""

    def __init__(self, path: str, pinned: Pin, done_prefix: Callable[[], int]) -> None:
        self.pinned = pinned
        self._path = path
        self._done_prefix = done_prefix
        self._hash = hashlib.md5(usedforsecurity=False)
        self.hashed = 0
        self._all = threading.Event()  # hash to the end, whatever the prefix
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="laden-upload-md5", daemon=True)
        self._thread.start()

    def digest(self) -> str:
        """The file's MD5 in hex, once every byte is hashed.

        Raises:
            LocalFileChanged, DiskError: the file changed, or could not be read.
        """
        self._all.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self.hashed != self.pinned.size:
            raise LocalFileChanged(f"{self._path} was not hashed to its end; nothing was "
                                   "committed")
        return self._hash.hexdigest()

    @property
    def usable(self) -> bool:
        """Whether it still hashes on: not stopped, and no error."""
        return not self._stop.is_set() and self._error is None

    def close(self) -> None:
        self._stop.set()
        self._all.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            self._error = DiskError(f"cannot read {self._path}: {exc.strerror}")
            return
        try:
            found = os.fstat(fd)
            if (found.st_size, found.st_mtime_ns, found.st_ino) != (
                    self.pinned.size, self.pinned.mtime_ns, self.pinned.inode):
                raise LocalFileChanged(f"{self._path} changed during the upload; nothing was "
                                       "committed (resume to upload it again from the first "
                                       "byte)")
            self._hash_along(fd)
        except (LocalFileChanged, DiskError) as exc:
            self._error = exc
        finally:
            os.close(fd)

    def _hash_along(self, fd: int) -> None:
        size = self.pinned.size
        buffer = bytearray(READ_SIZE)
        view = memoryview(buffer)
        while self.hashed < size and not self._stop.is_set():
            until = size if self._all.is_set() else min(self._done_prefix() + AHEAD, size)
            if until <= self.hashed:
                self._all.wait(POLL)
                continue
            want = min(READ_SIZE, until - self.hashed)
            try:
                n = os.preadv(fd, [view[:want]], self.hashed)
            except OSError as exc:
                raise DiskError(f"cannot read {self._path}: {exc.strerror}") from None
            if n == 0:
                raise LocalFileChanged(f"{self._path} became shorter during the upload; "
                                       "nothing was committed")
            self._hash.update(view[:n])
            self.hashed += n


def follow(previous: TrailingMd5 | None, uploader: Uploader, local: LocalFile,
           done_prefix: Callable[[], int]) -> TrailingMd5 | None:
    """The attempt's MD5 of the file: the previous attempt's while the file is as it was, a new
    one otherwise; None when the service keeps no MD5."""
    if previous is not None and previous.pinned == local.pinned and previous.usable:
        return previous
    if previous is not None:
        previous.close()
    if not wanted(uploader):
        return None
    return TrailingMd5(local.path, local.pinned, done_prefix)


def of_file(local: LocalFile) -> str:
    """The MD5 of the whole local file, read again (`comparing.digests`)."""
    return comparing.digests(local, local.pinned, ["md5"])["md5"]
