"""Checkpoints: how much of a download the journal counts as done, and when it is flushed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import DiskError, JournalError
from ...store.journal import boot_id

if TYPE_CHECKING:
    from ..seam import Run
    from .files import DownloadFiles


def checkpoint(run: Run, files: DownloadFiles, *, final: bool = False, flush: bool = False
               ) -> None:
    """Record which bytes are written, and when `flush`, force them to disk first.

    Every checkpoint notes the kernel's boot id. After a crash or `kill -9` of laden the
    boot id is unchanged and the page cache still holds every written byte, so the
    written ranges are trusted; after a power cut or an OS crash it differs, and only the
    ranges last flushed are (see `Journal`). Forcing every checkpoint to disk would cap
    downloads at the disk's write speed, which curl, wget and aria2c never wait for.
    """
    plan = files.plan
    journal = run.journal
    if plan is None or journal is None or not files.part.named:
        return  # bytes without a name on disk are gone if laden stops: none is counted
    ranges = plan.done_ranges()
    part = files.part
    try:
        if not final and not part.still_there():
            raise DiskError(f"{part.path} was deleted during the download, or its folder was")
        if flush:
            part.flush()
    except DiskError as exc:
        run.fail(exc)
        return
    download = run.download
    with download.lock:
        record = download.record
        record.done_ranges = ranges
        record.boot_id = boot_id()
        if flush:
            record.flushed_ranges = ranges
    if final or flush:
        run.save()
        return
    try:
        journal.save_progress(download.id, ranges)
    except JournalError as exc:
        # Progress that cannot be recorded is not safe to go on with: pause, keep the
        # bytes (the journal still holds its last true record) and say why.
        run.fail(DiskError(str(exc), no_space=exc.no_space))
