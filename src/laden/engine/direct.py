"""Writing large downloads straight to the disk, past the page cache (`O_DIRECT`).

A buffered write copies every byte into a freshly allocated page-cache page, and on Linux one
file's buffered writes are serialised by its inode lock: however many connections a download
has, one thread at a time fills pages. On the 2-core VM laden is benchmarked on that single
copy capped downloads at 350 to 1,400 MiB/s depending on how recently the host had taken the
guest's free memory back, while `O_DIRECT` writes of the same bytes ran at 1.6 to 2 GiB/s
whatever the memory did, at a third of the CPU (README, "Speed" and "Policies"). It also keeps
a 50 GiB download from pushing everything else out of memory, or a container over its memory
limit.

Direct writes need the file offset, the length and the memory address aligned to the device's
block size. Connections read into page-aligned buffers (`aligned_buffer`) at the same offset
within a page as the bytes' place in the file (`slot`), so a read's middle can go direct; the
unaligned head and tail of a range go through the page cache as usual.
"""

from __future__ import annotations

import mmap
import os

ALIGN = 4096
"""Direct I/O alignment: every common device's logical block size divides a page."""
MIN_DIRECT = 64 * 1024
"""Shorter writes stay buffered: a direct write waits for the disk, a buffered one does not."""
AUTO_MIN_SIZE = 64 * 1024 * 1024
"""`direct_io = "auto"` leaves smaller files to the page cache: they are written in a blink
either way, and reading them back right after is then free."""
LOCAL_FILE_SYSTEMS = frozenset({"ext4", "xfs", "btrfs"})
"""Where `auto` goes direct: local block file systems. On NFS, SMB or FUSE, O_DIRECT means an
uncached round trip per write, and tmpfs has no disk to go to."""

_O_DIRECT = getattr(os, "O_DIRECT", 0)
MOUNTINFO = "/proc/self/mountinfo"


def wanted(mode: str, folder: str, size: int | None) -> bool:
    """Whether a download of `size` bytes into `folder` should try direct writes."""
    if not _O_DIRECT or mode == "off" or size is None:
        return False
    if mode == "on":
        return True
    return size >= AUTO_MIN_SIZE and file_system_type(folder) in LOCAL_FILE_SYSTEMS


def open_direct(path: str, *, read: bool = False) -> int | None:
    """A direct descriptor for `path` (to write, or with `read` to read), or None where the
    file system refuses one."""
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, (os.O_RDONLY if read else os.O_WRONLY) | os.O_CLOEXEC | _O_DIRECT)
    except OSError:
        return None


def aligned_buffer(size: int) -> memoryview:
    """A reusable read buffer of `size` bytes plus the slack `slot` needs, page-aligned."""
    return memoryview(mmap.mmap(-1, size + ALIGN))


def slot(buffer: memoryview, offset: int, count: int) -> memoryview:
    """Where in `buffer` to read `count` bytes bound for file `offset`: at the same place within
    a page, so the aligned middle of the read can be written direct."""
    start = offset % ALIGN
    return buffer[start : start + count]


def split(offset: int, count: int) -> tuple[int, int]:
    """(head, body): write `head` bytes buffered, then `body` bytes direct, then the rest
    buffered. `body` is 0 when the aligned middle is too short to be worth a direct write."""
    head = -offset % ALIGN
    body = max(0, count - head) // ALIGN * ALIGN
    return (head, body) if body >= MIN_DIRECT else (count, 0)


def file_system_type(folder: str) -> str:
    """The type of the file system `folder` is on ("ext4", "nfs4", ...), or "" if unknown."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as mounts:
            lines = mounts.readlines()
    except OSError:
        return ""
    path = os.path.realpath(folder)
    best, kind = -1, ""
    for line in lines:
        # "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw": the mount point is
        # the fifth field, the type the first after " - ".
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        point = parts[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the last of stacked mounts is the visible one
            best, kind = len(point), rest.split()[0]
    return kind
