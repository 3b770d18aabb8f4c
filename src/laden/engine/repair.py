"""`laden repair`: fetching again only the damaged pieces of a finished file.

The piece hashes recorded while the file downloaded (see `pieces`) say which pieces are damaged.
When the remote file is still the version that was downloaded (its size and validators,
compared as a resume compares them), each damaged piece is fetched with one range request,
checked against its recorded hash, and only then written over the damaged bytes. The file is
then synced and checked whole: against its checksum, or its piece hashes when it has none.

In place, not into a copy renamed over the file: copying a 2 GiB file to mend 4 MiB costs a
full read and write and 2 GiB of free space, and the rename would protect nothing. Only damaged
pieces are written, and only with bytes that hash to what the piece held when it was
downloaded, so each write can only turn a wrong piece into the right one. A crash halfway leaves
some pieces mended and the rest as damaged as before, and the next repair goes on from there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import RangeNotSupported, RemoteChanged, Retryable
from ..core.states import State
from ..core.units import format_size
from . import pieces
from .checking import VerifyResult
from .download import Download
from .partfile import disk_error
from .verify import checksums_to_check, new_hasher, record_digests

if TYPE_CHECKING:
    from ..sources.base import RemoteInfo, Source
    from ..sources.registry import SourceRegistry

ATTEMPTS = 3
"""Tries per piece when the network fails; a repair is short, and can be run again."""
AGAIN = "laden get --force fetches it whole again"


@dataclass(frozen=True)
class RepairResult(VerifyResult):
    """What `DownloadManager.repair` did. `damaged` holds the ranges found damaged before the
    repair; `ok` says whether the file is whole now."""

    fetched: tuple[tuple[int, int], ...] = ()
    """Byte ranges [start, end) fetched again and written into the file."""
    checked: bool = False
    """The file's bytes were compared with what was recorded, so `ok` is a verdict on them
    (False: the repair was refused before, and the download's state is left as it was)."""


def repair_file(download: Download, sources: SourceRegistry,
                verifying: Callable[[], None]) -> RepairResult:
    """Mend the finished file of `download`; `verifying` is called before the first read."""
    record = download.record
    path = record.dest or ""

    def refused(message: str) -> RepairResult:
        return RepairResult(False, path, None, None, None, message)

    if download.state not in (State.DONE, State.FAILED) or not path or (
        record.extra.get("skipped")
    ):
        return refused(f"download {download.id} is {download.state.value}: there is no "
                       "finished file to repair")
    if not os.path.isfile(path):
        return refused("the file is gone: deleted or moved since it was downloaded")
    hashes, why = pieces.of_record(record)
    if hashes is None or record.size is None:
        return refused(f"repair is not possible: {why}; {AGAIN}")
    size = record.size
    if os.path.getsize(path) != size:
        return refused(f"it has {os.path.getsize(path)} bytes, the download had {size}; a repair "
                       f"mends bytes in place and cannot change the length: {AGAIN}")
    verifying()
    try:
        return _mend_file(download, sources, hashes, size, path)
    except OSError as exc:  # unreadable, unwritable, or the disk failed: one line, no traceback
        raise disk_error(exc, path) from exc


def _mend_file(download: Download, sources: SourceRegistry, hashes: pieces.PieceHashes,
               size: int, path: str) -> RepairResult:
    """Find the damaged pieces, mend them, and check the whole file; one descriptor throughout,
    so the file checked is the file written."""
    record = download.record
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        damaged = pieces.check(fd, hashes, size)
        ranges = tuple(pieces.ranges_of(damaged, hashes, size))
        fetched: list[tuple[int, int]] = []
        if damaged:
            problem = _mend(fd, download, sources, hashes, damaged, fetched)
            os.fsync(fd)
            if problem:
                done = f" ({_sized(fetched)} mended before that)" if fetched else ""
                return RepairResult(False, path, None, None, None,
                                    f"{pieces.describe(damaged, hashes, size)}; {problem}{done}",
                                    ranges, tuple(fetched), checked=True)
        wanted = [c for c in checksums_to_check(record.checksums) if c.get("expected")]
        whole = {c["algorithm"]: new_hasher(c["algorithm"], size=size) for c in wanted}
        still = pieces.check(fd, hashes, size, whole.values())
    finally:
        os.close(fd)
    return _verdict(download, hashes, size, ranges, fetched, still, wanted,
                    {name: h.hexdigest() for name, h in whole.items()})


def _mend(fd: int, download: Download, sources: SourceRegistry, hashes: pieces.PieceHashes,
          damaged: list[int], fetched: list[tuple[int, int]]) -> str:
    """Fetch and write the damaged pieces; why it stopped ("" when every piece was mended)."""
    record = download.record
    size = record.size or 0
    source = sources.for_url(record.url)
    remote = source.probe(record.url, download.options)
    changed = _changed(record, remote)
    if changed:
        return f"{changed} since it was downloaded, and mending it would mix two versions: {AGAIN}"
    if not remote.supports_ranges:
        return f"the server does not answer byte ranges, so only the whole file can come: {AGAIN}"
    buffer = memoryview(bytearray(hashes.piece_size))
    for index in damaged:
        start, end = hashes.span(index, size)
        try:
            data = _fetch(source, remote, start, end, download, buffer)
        except (RemoteChanged, RangeNotSupported) as exc:
            return f"{exc}: {AGAIN}"
        if pieces.digest(data) != hashes.digest(index):
            return (f"the server sent other bytes for {start}-{end - 1} than it did when the file "
                    "was downloaded, though its size and validators are the same; nothing was "
                    f"written there: {AGAIN}")
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], start + written)
        fetched.append((start, end))
    return ""


def _changed(record: Any, remote: RemoteInfo) -> str:
    """How the remote file differs from the version downloaded; "" when it does not.

    As a resume compares: size, then ETag or version, then Last-Modified. A server that gives
    no validator cannot show a change; each piece is then checked against its hash before it
    is written, which catches one.
    """
    from ..sources.base import RemoteInfo

    before = RemoteInfo(url=record.url, final_url=record.final_url or record.url,
                        size=record.size, supports_ranges=bool(record.supports_ranges),
                        etag=record.etag, last_modified=record.last_modified,
                        version=record.version)
    if before.same_version(remote):
        return ""
    if before.size != remote.size or (before.version and remote.version) or (
        before.last_modified and remote.last_modified
    ):
        return before.describe_change(remote)
    return ""


def _fetch(source: Source, remote: RemoteInfo, start: int, end: int, download: Download,
           buffer: memoryview) -> memoryview:
    """Bytes [start, end) of the remote file, read into `buffer`."""
    view = buffer[: end - start]
    for attempt in range(1, ATTEMPTS + 1):
        got = 0
        try:
            reader = source.open_range(remote, start, end, download.options)
            try:
                while got < len(view) and (n := reader.readinto(view[got:])):
                    got += n
            finally:
                reader.close()
            if got == len(view):
                return view
            problem: Retryable = Retryable(f"the server sent {got} of {len(view)} bytes")
        except Retryable as exc:
            problem = exc
        if attempt == ATTEMPTS:
            raise problem
        download.add_error(f"{problem}; trying again")
        time.sleep(attempt)
    raise AssertionError("unreachable")


def _verdict(download: Download, hashes: pieces.PieceHashes, size: int,
             ranges: tuple[tuple[int, int], ...], fetched: list[tuple[int, int]],
             still: list[int], wanted: list[dict[str, Any]],
             digests: dict[str, str]) -> RepairResult:
    """The result of the check after the repair, and the record's checksums updated."""
    with download.lock:
        mismatch = record_digests(wanted, digests) if wanted else None
    algorithm = wanted[0]["algorithm"] if wanted else None
    expected = wanted[0]["expected"] if wanted else None
    actual = digests.get(algorithm or "")
    done = f"fetched {_sized(fetched)} again; " if fetched else "nothing was damaged; "
    if still:
        message = f"{done}{pieces.describe(still, hashes, size)} still"
    elif mismatch is not None and not ranges:
        message = (f"every piece matches the hashes recorded when it was downloaded, but "
                   f"{mismatch}: the bytes were wrong already then, so a repair cannot find "
                   f"them: {AGAIN}")
    elif mismatch is not None:
        message = f"{done}{mismatch}"
    elif algorithm:
        message = f"{done}{algorithm} matches ({wanted[0]['origin']})"
    else:
        message = f"{done}every piece matches its hash (no checksum of the whole file is known)"
    ok = not still and mismatch is None
    return RepairResult(ok, download.record.dest or "", algorithm, expected, actual, message,
                        ranges, tuple(fetched), checked=True)


def _sized(fetched: list[tuple[int, int]]) -> str:
    """'bytes 0-8388607 (8.0 MiB)', neighbouring ranges joined."""
    ranges: list[tuple[int, int]] = []
    for start, end in fetched:
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    shown = ", ".join(f"{start}-{end - 1}" for start, end in ranges[:5])
    more = f" and {len(ranges) - 5} more ranges" if len(ranges) > 5 else ""
    total = sum(end - start for start, end in ranges)
    return f"bytes {shown}{more} ({format_size(total)})"
