"""Before the first byte: the partial file, and how the bytes will come.

The partial file is this download's alone (its identity is journalled before any byte is
written), sized up front so a full disk shows at once. The plan splits what is missing among
the connections; with a checksum to check, in pieces front to back, so the hash can follow
the bytes as they arrive (`hashing`). A small file that came whole with the probe is written
at once, with no connection at all, into a file with no name where it can be (`unnamed`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...core.names import free_name
from .. import direct
from ..hashing import TrailingHasher
from ..partfile import (
    PART_SUFFIX,
    PartialFile,
    PartialFileTaken,
    allocated_bytes,
    check_free_space,
    ensure_folder,
)
from ..pieces import PIECE_SIZE, PieceRecorder
from ..segments import SegmentPlan
from ..unnamed import UnnamedFile
from ..verify import checksums_to_check
from .destination import conflict_policy
from .restarts import reset

if TYPE_CHECKING:
    from ..seam import Run
    from .files import DownloadFiles

IN_ORDER_PIECE = 4 << 20
"""Piece size when a checksum is computed during the download: small enough that the pieces in
flight mostly fit the hasher's window (`hashing.WINDOW`), large enough that requests stay few.
2, 4 and 8 MiB measured alike on a 2 GiB file with 16 connections; 1 MiB was slower."""


def prepare_file(run: Run, files: DownloadFiles) -> None:
    download = run.download
    record = download.record
    assert record.dest is not None
    ensure_folder(os.path.dirname(record.dest))
    part_path = record.dest + PART_SUFFIX
    if record.done_ranges:
        have = os.path.getsize(part_path) if os.path.exists(part_path) else -1
        if have < max(end for _, end in record.done_ranges):
            reset(run, files, "the partial file is missing or shorter than recorded")
    size = record.size
    if size is not None and files.probe_body() is None:
        # A file already in memory is written at once, and a full disk then pauses it as any
        # write would: asking first was one more system call per small file.
        check_free_space(os.path.dirname(record.dest),
                         max(0, size - allocated_bytes(part_path)))
    if not _open_unnamed(run, files):
        identity = _open_part(run, files, size)
        if record.extra.get("part") != identity:
            with download.lock:
                record.extra["part"] = identity
            run.save()  # before any byte is written: this file is ours
    if size is not None and record.supports_ranges:
        if files.probe_body() is None:  # a file already in memory is written at once
            files.part.preallocate(size)
        files.plan = SegmentPlan(size, record.done_ranges, min_size=run.config.min_segment_size,
                                 boundary=PIECE_SIZE)
        download.plan = files.plan
    else:
        files.part.truncate(0)
        files.plan = None


def _open_unnamed(run: Run, files: DownloadFiles) -> bool:
    """Write a file that came whole with the probe into a file with no name yet (see
    `unnamed`): no partial file is made, so none is recorded. Only where the final name is
    free (chosen so under the rename policy, not there yet under overwrite) and no partial
    file of this download is on record."""
    download = run.download
    record = download.record
    if files.probe_body() is None or record.done_ranges or record.extra.get("part"):
        return False
    assert record.dest is not None
    policy = conflict_policy(download, run.config)
    if policy != "rename" and (policy != "overwrite" or os.path.lexists(record.dest)):
        return False
    part = UnnamedFile(os.path.dirname(record.dest), shown=f"{record.dest} (not yet named)")
    if not part.open_unnamed():
        return False
    files.part.close()
    files.part = part
    return True


def name_partial_instead(run: Run, files: DownloadFiles) -> PartialFile:
    """A small file's bytes, written into a file with no name that could not be linked after
    all, written again into a named partial file, recorded as this download's first."""
    body = files.probe_body()
    assert body is not None, "only a file that came whole with the probe has no name"
    record = run.download.record
    identity = _open_part(run, files, len(body))
    with run.download.lock:
        record.extra["part"] = identity
    run.save()
    files.part.write(memoryview(body), 0)
    return files.part


def _open_part(run: Run, files: DownloadFiles, size: int | None) -> list[int]:
    """Open this download's partial file. Under the rename policy, a name whose partial file
    another laden process made a moment ago is given up for the next free one."""
    record = run.download.record
    assert record.dest is not None
    direct_io = direct.wanted(run.config.direct_io, os.path.dirname(record.dest), size)
    files.part.close()  # an earlier attempt's: its lock would refuse this one's
    for _ in range(100):
        files.part = PartialFile(record.dest + PART_SUFFIX)
        try:
            return files.part.open(record.extra.get("part"), resumed=bool(record.done_ranges),
                                   direct_io=direct_io)
        except PartialFileTaken:
            if conflict_policy(run.download, run.config) != "rename" or record.done_ranges:
                raise
        with run.choosing_name() as taken, run.download.lock:
            record.dest = free_name(record.dest, taken)
            record.filename = os.path.basename(record.dest)
    raise PartialFileTaken(f"no free name for {record.dest} in 100 tries")


def ready_bytes(run: Run, files: DownloadFiles, connections: int) -> bool:
    """Ready this attempt's bytes for `connections` connections; False when none is needed."""
    size = run.download.record.size
    plan = files.plan
    files.pieces = None if size is None else PieceRecorder(
        size, done=plan.done_ranges() if plan is not None else ())
    body = files.probe_body()
    if body is not None:
        _write_probe_body(run, files, body)
        return False
    if plan is None:
        return size != 0  # one stream, unless there is nothing to fetch
    config = run.config
    checks = checksums_to_check(run.download.record.checksums)
    if checks and plan.size:
        # Small files still spread over their connections: about four pieces each.
        piece = min(IN_ORDER_PIECE, plan.size // (connections * 4))
        plan.split_for(connections, in_order=max(config.min_segment_size, piece))
        files.hasher = TrailingHasher(files.part.path, {c["algorithm"] for c in checks},
                                      plan, plan.size, direct_io=files.part.direct)
    else:
        plan.split_for(connections)
    return True


def _write_probe_body(run: Run, files: DownloadFiles, body: bytes) -> None:
    """A small file that came whole with the probe: write it, as a connection would."""
    plan = files.plan
    if plan is not None:
        segment = plan.take(0)
        if segment is None:
            return  # already complete (a resume after the last byte was written)
        start = segment.position
        plan.reserve(segment, segment.end - start)
        files.part.write(memoryview(body)[start : segment.end], start)
        plan.advance(segment, segment.end - start)
    else:
        files.part.write(memoryview(body), 0)
        run.streamed = len(body)
        run.finish_stream(len(body))
    run.limits.consume(len(body), run.stop_event)
