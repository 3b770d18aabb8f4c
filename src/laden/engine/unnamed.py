"""A file that has no name until it is whole: how a small file that came whole with the probe
is written.

It is made with `O_TMPFILE` in the destination's folder and linked to its final name once
written and checked. Nothing is on disk under any name before that, so laden never needs to
record the file's identity to know it is its own after a crash (a partial file needs that,
one journal write per file), and a crash before the link leaves nothing behind to clean up:
the next session fetches the file again, in one request. The link fails when the name is
taken, so it never replaces a file: under the overwrite policy, a name taken meanwhile sends
the bytes into a named partial file, whose rename replaces it.

Where a file system or kernel cannot make such a file (`O_TMPFILE` is Linux 3.11 and later,
on ext4, XFS, Btrfs and tmpfs; not on NFS and some FUSE mounts), or the process may not link
one (linkat with AT_EMPTY_PATH needs root or Linux 6.10; some sandboxes refuse the /proc
way), the download takes a named partial file as before: the ways that fail are learnt per
file system, once per process, on the first file.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
from collections.abc import Callable

from .partfile import AT_FDCWD, PartialFile, at_call, disk_error, fsync_dir, last_errno

log = logging.getLogger("laden.transfer")

_CANNOT = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT)
"""What open(2) answers where a folder cannot hold an unnamed file (ENOENT: no O_TMPFILE in
an old kernel's file system code)."""

_NO_LINK = (errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.EINVAL, errno.EMLINK,
            errno.ENOENT)
"""What a way of linking answers where it does not work: not allowed to this process (EPERM),
refused by a sandbox (EXDEV), or /proc not there (ENOENT)."""

_PROC = "/proc/self/fd"
"""Where an unnamed file is read by path while it is open (the checks after the download)."""
_AT_EMPTY_PATH = 0x1000


def _link_empty_path(fd: int, dest: str) -> None:
    """linkat(fd, "", AT_EMPTY_PATH): allowed to root, and since Linux 6.10 to the process
    that opened the file."""
    linkat = at_call("linkat")
    if linkat is None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), dest)
    if linkat(fd, b"", AT_FDCWD, os.fsencode(dest), _AT_EMPTY_PATH) != 0:
        err = last_errno()
        raise OSError(err, os.strerror(err), dest)


def _link_proc(fd: int, dest: str) -> None:
    """linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW: open(2)'s own way for everyone,
    which some sandboxes answer with EXDEV."""
    os.link(f"{_PROC}/{fd}", dest, follow_symlinks=True)


@functools.cache
def _proc_mounted() -> bool:
    return os.path.isdir(_PROC)


Link = Callable[[int, str], None]
_ways: dict[int, list[Link]] = {}
"""The ways of linking still believed to work on each device (by `st_dev`), in the order
they are tried; one that fails with `_NO_LINK` is dropped for the life of the process."""
_learning = threading.Lock()


def _ways_on(device: int) -> list[Link]:
    with _learning:
        return list(_ways.setdefault(device, [_link_empty_path, _link_proc]))


def _drop(device: int, way: Link) -> None:
    with _learning:
        ways = _ways.setdefault(device, [_link_empty_path, _link_proc])
        if way in ways:
            ways.remove(way)


class CannotLink(Exception):
    """No way of linking an unnamed file works on this file system after all."""


class UnnamedFile(PartialFile):
    """An `O_TMPFILE` file written like a partial file; `path` reads it while it is open."""

    named = False

    def __init__(self, folder: str, shown: str) -> None:
        super().__init__(folder)
        self.folder = folder
        self.shown = shown
        self._device = -1

    def open_unnamed(self) -> bool:
        """Make the file; False where this folder cannot hold one, or none can be linked on
        its file system (the caller names a partial file instead)."""
        if not hasattr(os, "O_TMPFILE") or not _proc_mounted():
            return False  # without /proc the file could not be read back for its checks
        try:
            fd = os.open(self.folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno in _CANNOT:
                return False
            raise disk_error(exc, self.folder) from exc
        self._device = os.fstat(fd).st_dev
        if not _ways_on(self._device):
            os.close(fd)
            return False
        self._fd = fd
        self.path = f"{_PROC}/{fd}"
        return True

    def still_there(self) -> bool:
        return self._fd is not None  # nobody can delete a file that has no name

    def name_as(self, dest: str, *, overwrite: bool, durable: bool) -> None:
        """Give the file its name, which must be free: a link never replaces, so a taken name
        is FileExistsError whatever `overwrite` says (the caller then writes the bytes into a
        named partial file, whose rename replaces).

        Raises:
            CannotLink: no way of linking works here after all (learnt for the next files);
                the caller writes the bytes into a named partial file instead.
        """
        try:
            if durable:
                os.fdatasync(self.fd)
            self._link(dest)  # EEXIST on a taken name
            if durable:
                fsync_dir(os.path.dirname(dest) or ".")
        except (FileExistsError, CannotLink):
            raise
        except OSError as exc:
            raise disk_error(exc, dest) from exc
        self.close()

    def keep_as(self, path: str) -> list[int] | None:
        """Name the bytes `path` (the partial file's name) when a check stops the download
        before its end, as a named partial file keeps them; from then on this is that named
        file. Its identity, to be journalled, or None when they could not be kept there."""
        try:
            self._link(path)
        except (OSError, CannotLink) as exc:
            log.warning("the bytes of %s could not be kept as %s: %s", self.shown, path, exc)
            return None
        self.path = self.shown = path
        self.named = True
        found = os.fstat(self.fd)
        return [found.st_dev, found.st_ino]

    def _link(self, dest: str) -> None:
        """Link the file to `dest` by the first way that works on its file system."""
        for way in _ways_on(self._device):
            try:
                way(self.fd, dest)
                return
            except OSError as exc:
                if exc.errno not in _NO_LINK or (exc.errno == errno.ENOENT
                                                 and not os.path.isdir(os.path.dirname(dest))):
                    raise
                _drop(self._device, way)
        raise CannotLink(dest)
