"""The one partial file a download writes into, and the atomic rename at the end.

Every connection writes its bytes with `os.pwrite` at their own offset, so there are no
per-segment files and no assembly copy; on large downloads the aligned middle of each write
skips the page cache (see `direct`). `flush` makes what was written durable before the
journal records it, so a resume after a crash or power cut never trusts unwritten bytes.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import shutil
import stat
import threading
from typing import TYPE_CHECKING, Any

from ..core.errors import DestinationExists, DiskError, InputError
from ..core.names import PART_SUFFIX
from . import direct

if TYPE_CHECKING:
    from ..store.journal import Record



class PartialFileTaken(DestinationExists):
    """The partial file's name is held by another download, process or program."""


def describe_os_error(exc: OSError, path: str) -> str:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "the folder no longer exists",
        errno.EIO: "input/output error",
    }
    return f"cannot write {path}: {reasons.get(exc.errno or 0, exc.strerror or str(exc))}"


def disk_error(exc: OSError, path: str) -> DiskError:
    return DiskError(describe_os_error(exc, path),
                     no_space=exc.errno in (errno.ENOSPC, errno.EDQUOT))


def allocated_bytes(path: str) -> int:
    """Bytes a file really occupies on disk: the holes of a sparse partial file (where the file
    system could not preallocate) still need space, so its length alone says too little."""
    try:
        found = os.stat(path)
    except OSError:
        return 0
    blocks = getattr(found, "st_blocks", None)
    return found.st_size if blocks is None else min(found.st_size, blocks * 512)


class PartialFile:
    named = True
    """Whether the bytes have a name on disk, so the journal may count them as written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.shown = path
        """How the file is named in messages."""
        self._fd: int | None = None
        self._direct_fd: int | None = None
        self._direct_refused = False
        # One write through the page cache at a time. The kernel takes the file's inode lock
        # for each such write anyway; connections that wait for it in the kernel spin
        # (`rwsem_spin_on_owner`), which on 2 cores takes the CPU from the one writing: 28 % of
        # a 16-connection download's CPU into tmpfs. Waiting here, they sleep. Direct writes
        # share the inode lock and go on in parallel, without this one.
        self._buffered = threading.Lock()

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise DiskError(f"{self.shown} is not open")
        return self._fd

    def open(self, identity: list[int] | None, *, resumed: bool = False,
             direct_io: bool = False) -> list[int]:
        """Open the partial file for this download alone, and lock it while it is open.

        `identity` is the (device, inode) the journal recorded when this download created its
        partial file, None when it has none yet; the caller records what this returns before
        writing. A partial file that is not this download's is never opened for writing:
        another download, another laden with another state folder, or a program that made a
        file of that name owns it (`PartialFileTaken`). `resumed`: the journal records bytes
        in a file it made before identities were recorded, which is taken as this download's.
        """
        flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                fd = self._open_existing(flags, identity, resumed)
        except OSError as exc:
            raise disk_error(exc, self.path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PartialFileTaken(f"{self.path} is being written by another laden process; "
                                   "wait for it to finish") from None
        self._fd = fd
        if direct_io:
            self._direct_fd = direct.open_direct(self.path)
        found = os.fstat(fd)
        return [found.st_dev, found.st_ino]

    def _open_existing(self, flags: int, identity: list[int] | None, resumed: bool) -> int:
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PartialFileTaken(f"{self.path} is a symbolic link; laden writes only "
                                       "partial files it made itself") from None
            raise
        found = os.fstat(fd)
        if identity is not None and [found.st_dev, found.st_ino] == list(identity):
            return fd
        if identity is None and resumed and stat.S_ISREG(found.st_mode):
            return fd
        if identity is None and found.st_size == 0 and stat.S_ISREG(found.st_mode):
            # Empty: left by a laden stopped between creating it and recording it, this one
            # or another. Nothing is lost by a new file in its place, and one recorded by
            # nobody else (a stopped laden that recorded it will find another file and
            # start again).
            os.close(fd)
            os.unlink(self.path)
            return os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        raise PartialFileTaken(
            f"{self.path} belongs to another download (or another program); laden does not "
            "write into it. Remove it, or give this download another name (--name)")

    @property
    def direct(self) -> bool:
        """Whether writes placed by `direct.slot` can skip the page cache."""
        return self._direct_fd is not None and not self._direct_refused

    def still_there(self) -> bool:
        """False when the file (or its folder) was deleted or replaced under us: writes would
        go on into a file nobody can see any more."""
        try:
            named = os.stat(self.path)
        except OSError:
            return False
        mine = os.fstat(self.fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def size_on_disk(self) -> int:
        return os.fstat(self.fd).st_size

    def preallocate(self, size: int) -> None:
        """Reserve `size` bytes so a full disk shows up now, not at 90 %."""
        try:
            if self.size_on_disk() >= size:
                return
            try:
                os.posix_fallocate(self.fd, 0, size)
            except OSError as exc:
                # Some file systems (tmpfs on old kernels, network mounts) cannot preallocate;
                # a sparse file of the right length works everywhere.
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(self.fd, size)
        except OSError as exc:
            raise disk_error(exc, self.shown) from exc

    def write(self, data: memoryview, offset: int, *, placed: bool = False) -> None:
        """Write `data` at `offset`. `placed`: the data sits where `direct.slot` put it, so its
        aligned middle can go to the disk directly."""
        if placed and self.direct:
            head, body = direct.split(offset, len(data))
            if body:
                self._write(self.fd, data[:head], offset)
                if self._write_direct(data[head : head + body], offset + head):
                    self._write(self.fd, data[head + body :], offset + head + body)
                    return
                data, offset = data[head:], offset + head  # buffered after all
        self._write(self.fd, data, offset)

    def _write_direct(self, data: memoryview, offset: int) -> bool:
        """False when the file system turns direct writes down (EINVAL: an alignment it wants
        and we did not guess); the file goes on buffered. Other errors are the download's."""
        assert self._direct_fd is not None
        try:
            self._write(self._direct_fd, data, offset)
            return True
        except DiskError as exc:
            if not isinstance(exc.__cause__, OSError) or exc.__cause__.errno != errno.EINVAL:
                raise
            # Not closed here: other connections may be writing through it right now.
            self._direct_refused = True
            return False

    def _write(self, fd: int, data: memoryview, offset: int) -> None:
        try:
            if fd == self._direct_fd:
                self._pwrite(fd, data, offset)
            else:
                with self._buffered:
                    self._pwrite(fd, data, offset)
        except OSError as exc:
            raise disk_error(exc, self.shown) from exc

    @staticmethod
    def _pwrite(fd: int, data: memoryview, offset: int) -> None:
        while data:
            written = os.pwrite(fd, data, offset)
            data = data[written:]
            offset += written

    def splice_in(self, pipe: int, count: int, offset: int) -> None:
        """Move `count` bytes waiting in `pipe` into the file at `offset`, inside the kernel."""
        try:
            with self._buffered:  # a splice into the file takes the inode lock too
                while count:
                    moved = os.splice(pipe, self.fd, count, offset_dst=offset)
                    if not moved:
                        raise OSError(errno.EIO, "the pipe ran dry")
                    count -= moved
                    offset += moved
        except OSError as exc:
            raise disk_error(exc, self.shown) from exc

    def truncate(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise disk_error(exc, self.shown) from exc

    def flush(self) -> None:
        if self._fd is None:
            return
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise disk_error(exc, self.shown) from exc

    def name_as(self, dest: str, *, overwrite: bool, durable: bool) -> None:
        """Close the file and move it to `dest` (see `finish`)."""
        self.close()
        finish(self.path, dest, overwrite=overwrite, durable=durable)

    def close(self) -> None:
        if self._direct_fd is not None:
            fd, self._direct_fd = self._direct_fd, None
            os.close(fd)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def identity_of(path: str) -> list[int] | None:
    """(device, inode) of a file, as `PartialFile.open` records it; None when there is none."""
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return [found.st_dev, found.st_ino]


def remove_partial(record: Record) -> None:
    """Delete the download's partial file, if it is still the one this download made: a file
    of that name made by another download or program is left alone."""
    if not record.dest:
        return
    path = record.dest + PART_SUFFIX
    recorded = record.extra.pop("part", None)
    found = identity_of(path)
    if found is None:
        return
    # With no identity recorded, only a record that counts bytes is taken to own the file (one
    # journalled before identities were): a download that made no partial file (a small one
    # written with no name, see `unnamed`) leaves another's alone.
    if list(recorded) == found if recorded is not None else bool(record.done_ranges):
        os.unlink(path)


def finish(part_path: str, dest: str, *, overwrite: bool, durable: bool = True) -> None:
    """Move the verified partial file to its final name in one atomic step.

    `durable` also syncs the folder, so the new name outlives a power cut.

    Without `overwrite`, an existing file at `dest` is never replaced: renameat2 with
    RENAME_NOREPLACE, or where that is missing a hard link, fails if the name is taken, where a
    plain rename would silently clobber it.
    """
    try:
        if overwrite:
            if identity_of(dest) is not None and not stat.S_ISREG(os.lstat(dest).st_mode):
                raise FileExistsError(dest)  # only a regular file is ever replaced
            os.replace(part_path, dest)
        elif not _rename_no_replace(part_path, dest):
            try:
                os.link(part_path, dest)
            except OSError as exc:
                if exc.errno == errno.EEXIST and _same_file(part_path, dest):
                    # A crash came between the link and the unlink below: finish that move.
                    os.unlink(part_path)
                    if durable:
                        fsync_dir(os.path.dirname(dest) or ".")
                    return
                if exc.errno == errno.EEXIST:
                    raise FileExistsError(dest) from exc
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                # No hard links here (some FUSE and network mounts): check, then rename.
                if os.path.lexists(dest):
                    raise FileExistsError(dest) from exc
                os.replace(part_path, dest)
            else:
                os.unlink(part_path)
        if durable:
            fsync_dir(os.path.dirname(dest) or ".")
    except FileExistsError:
        raise
    except OSError as exc:
        raise disk_error(exc, dest) from exc


_RENAME_NOREPLACE = 1
AT_FDCWD = -100
"""The current folder, as the *at(2) calls made through ctypes name it (here and in `unnamed`)."""


@functools.cache
def at_call(name: str) -> Any:
    """libc's `name`, a call shaped (dirfd, path, dirfd, path, flags) such as renameat2 or
    linkat, through ctypes with errno kept; None where this libc has none. Loaded on first
    use, not at the top: only a finishing download needs one."""
    import ctypes

    function = getattr(ctypes.CDLL(None, use_errno=True), name, None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
    return function


def last_errno() -> int:
    """The errno the last `at_call` function left."""
    import ctypes

    return ctypes.get_errno()


def _rename_no_replace(part_path: str, dest: str) -> bool:
    """renameat2(RENAME_NOREPLACE): one atomic step that fails when `dest` exists. False when
    this system or file system cannot do it; the caller then links and unlinks.

    One change to the folder instead of two: with many small files finishing at once, changes
    to one folder wait for each other in the kernel (measured with perf: the folder's lock was
    the largest kernel cost of 500 files of 256 KiB).
    """
    renameat2 = at_call("renameat2")
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(part_path), AT_FDCWD, os.fsencode(dest),
                 _RENAME_NOREPLACE) == 0:
        return True
    err = last_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # not supported here
    if err == errno.EEXIST and _same_file(part_path, dest):
        return False  # a crash between an earlier link and unlink: the link path finishes it
    if err == errno.EEXIST:
        raise FileExistsError(dest)
    raise OSError(err, os.strerror(err), dest)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def fsync_dir(path: str) -> None:
    """Make a change to the folder's names (a rename, a link) outlive a power cut."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_free_space(folder: str, needed: int) -> None:
    """DiskError now, with the numbers, rather than a full disk at 90 %."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        from ..core.units import format_size

        raise DiskError(
            f"not enough free space in {folder}: the download needs {format_size(needed)} more, "
            f"{format_size(free)} is free",
            no_space=True,
        )


def ensure_folder(folder: str) -> None:
    """Create the download folder, or say clearly why it cannot be used."""
    # mkdir of an existing folder still locks its parent, so it is asked about first.
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot use {folder} as the download folder: {exc.strerror}") \
                from exc
        if not os.path.isdir(folder):
            raise InputError(f"cannot use {folder} as the download folder: it is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to {folder}: "
                         + ("the file system is read-only" if _read_only(folder)
                            else "permission denied"))


def _read_only(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        return False


SPACE_MARGIN = 1 << 20
"""Free bytes beyond a paused download's needs before it resumes on its own (journal, slack)."""


def has_room_to_resume(record: Record, state_dir: str | None) -> bool:
    """Room for the rest of a download paused by a full disk, and for its journal."""
    folder = os.path.dirname(record.dest) if record.dest else record.dest_dir
    part = record.dest + PART_SUFFIX if record.dest else ""
    try:
        free = shutil.disk_usage(folder).free
        journal_free = shutil.disk_usage(state_dir).free if state_dir else free
    except OSError:
        return False
    have = allocated_bytes(part) if part else 0
    # Unknown size: the attempt starts again from zero, so it needs at least what the last one
    # used, or it would fill the disk at the same point again.
    needed = record.size - have if record.size is not None else have
    return free >= max(0, needed) + SPACE_MARGIN and journal_free >= SPACE_MARGIN
