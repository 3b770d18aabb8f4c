"""The local file an upload reads: pinned when the upload starts, read a range at a time.

The pin is the file's size, modification time in nanoseconds and inode. Any change to it
before the commit means the parts sent and the parts left to send may be of two versions of
the file, so the upload stops (`LocalFileChanged`) rather than commit a mixed object; its
`on_change` policy (`changes`) says whether it then starts again from the first byte. An
editor that saves by writing a new file and renaming it changes the inode; one that writes in
place changes the modification time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from ...core.errors import DiskError, InputError, LocalFileChanged


@dataclass(frozen=True)
class Pin:
    size: int
    mtime_ns: int
    inode: int

    def to_journal(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "inode": self.inode}

    @classmethod
    def from_journal(cls, data: dict[str, Any]) -> Pin:
        return cls(int(data["size"]), int(data["mtime_ns"]), int(data["inode"]))

    def tag(self) -> str:
        """A short name for this version of the file, the same in every run (Azure's block
        ids are made from it); it tells nothing of the file but that it changed."""
        text = f"{self.size}:{self.mtime_ns}:{self.inode}".encode()
        return hashlib.sha256(text).hexdigest()[:16]


def pin(path: str) -> Pin:
    """The file at `path` as it is now.

    Raises:
        InputError: it is missing or not a regular file.
    """
    try:
        found = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path} is not there to upload") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not os.path.isfile(path):
        raise InputError(f"{path} is not a file")
    return Pin(found.st_size, found.st_mtime_ns, found.st_ino)


class LocalFile:
    """The upload's piece reader: ranges of the pinned file, from one descriptor."""

    def __init__(self, path: str, pinned: Pin) -> None:
        self.path = path
        self.pinned = pinned
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise DiskError(f"cannot read {path}: {exc.strerror}") from None
        self.check()  # the file opened is the one pinned

    @property
    def size(self) -> int:
        return self.pinned.size

    def check(self) -> None:
        """Raise LocalFileChanged unless the file is still as pinned (by its name, and the
        open descriptor's too)."""
        try:
            now = os.stat(self.path)
            opened = os.fstat(self._fd)
        except OSError:
            raise LocalFileChanged(f"{self.path} was deleted or moved during the upload; "
                                   "nothing was committed") from None
        for found in (now, opened):
            if (found.st_size, found.st_mtime_ns, found.st_ino) != (
                    self.pinned.size, self.pinned.mtime_ns, self.pinned.inode):
                raise LocalFileChanged(
                    f"{self.path} changed during the upload; nothing was committed")

    def open_range(self, start: int, end: int | None) -> _Range:
        return _Range(self._fd, start, self.size if end is None else end, self.path)

    def renew(self) -> None:
        """Nothing to renew: a local file's address does not expire."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _Range:
    """Bytes [position, end) of the file, read in order with `os.preadv`."""

    status = "sending"
    """What the connection reading it shows (see `connection`)."""

    def __init__(self, fd: int, start: int, end: int, path: str) -> None:
        self._fd, self._position, self._end, self._path = fd, start, end, path

    def readinto(self, buffer: memoryview) -> int:
        want = min(len(buffer), self._end - self._position)
        if want <= 0:
            return 0
        try:
            n = os.preadv(self._fd, [buffer[:want]], self._position)
        except OSError as exc:
            raise DiskError(f"cannot read {self._path}: {exc.strerror}") from None
        if n == 0:
            raise LocalFileChanged(f"{self._path} became shorter during the upload; nothing "
                                   "was committed")
        self._position += n
        return n

    def close(self) -> None:
        """The descriptor is the file's, shared by every range."""


def files_under(folder: str) -> list[str]:
    """The files under `folder`, as paths relative to it with "/" between names, sorted; links
    to folders are not followed (a loop would never end)."""
    found = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            if os.path.isfile(full):
                found.append(os.path.relpath(full, folder).replace(os.sep, "/"))
    return found
