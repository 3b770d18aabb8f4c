"""What the service holds after a commit: the checks an upload makes of the object.

Before it sends (the conflict policy skip: is the object the file already?), after a commit it
has no answer to (a crash, a dropped connection: did the commit land?), and after its own commit
(does the object hold what was sent?). The object is compared by every checksum the service
keeps of it (`comparing`); where the service keeps the MD5 it was given without computing it
(Azure), by the parts it committed (`given_md5`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ...core.errors import ChecksumMismatch, TransferError
from ...core.states import State
from .. import events
from ..seam import Skip
from . import comparing, crc32c, given_md5, whole_md5
from .local import Pin

if TYPE_CHECKING:
    from ...sources.uploads import StoredObject, Uploader
    from ..seam import Run
    from .state import UploadState

log = logging.getLogger("laden.transfer")

COMMIT_LOOKS = (0.5, 1.0, 2.0, 4.0)
"""Seconds between looks for the object of a commit a killed laden asked for (7.5 s in all)."""


def landed_as_journalled(run: Run, uploader: Uploader) -> bool:
    """Whether the commit the journal says was asked for made the object, judged without
    the local file (it changed since): the object has the pinned size and the checksum
    journalled before the commit (its CRC32C), or, where the service keeps the MD5 it is
    given (Azure), the journalled blocks committed in order. A service that keeps neither
    (FTP) cannot tell: the change stops the upload as before."""
    record = run.download.record
    journal = record.upload or {}
    stored = uploader.stored(record.url, run.download.options)
    if stored is None or stored.size != Pin.from_journal(journal["pinned"]).size:
        return False
    if given_md5.keeps_given(uploader):
        parts = sorted(journal.get("parts", {}).items(), key=lambda item: int(item[0]))
        sent = [tag for _number, (tag, _crc) in parts]
        return bool(sent) and uploader.committed_parts(  # type: ignore[attr-defined]
            record.url, run.download.options) == sent
    return bool(journal.get("checksum")) and stored.crc32c == journal["checksum"]


def landed(run: Run, upload: UploadState) -> bool:
    """Whether a commit laden asked for made the object after all, though the service no
    longer knows the upload: S3 drops it from ListParts before the object appears (and a
    retried CompleteMultipartUpload whose first try succeeded answers NoSuchUpload), and
    finishing a large object takes a while. So the object is looked for again for a few
    seconds before the upload is taken as lost and sent again from the first byte."""
    if not upload.journal.get("committing"):
        return False
    options = run.download.options
    for wait in (0.0, *COMMIT_LOOKS):
        if wait:
            log.info("upload %s: its commit may still be finishing at the service; "
                     "looking again in %s s", run.download.id, wait)
        if run.stop_event.wait(wait):
            return False
        if is_the_file(upload, upload.uploader.stored(upload.url, options)):
            return True
    return False


def is_the_file(upload: UploadState, stored: StoredObject | None) -> bool:
    """Whether `stored` has the file's size and every checksum the service keeps of it
    (read from the file): this content is there, whoever committed it."""
    if stored is None or stored.size != upload.size or not comparing.kept(stored):
        return False
    local = upload.local
    return comparing.matches(stored, comparing.digests(local, local.pinned,
                                                       comparing.kept(stored)))


def skip_if_there(run: Run, upload: UploadState) -> None:
    """Raise Skip when the object is the file already (in order: replaced)."""
    stored = upload.uploader.stored(upload.url, run.download.options)
    if stored is None or stored.size != upload.size:
        return
    theirs = comparing.kept(stored)
    if not theirs:
        log.info("upload %s: the remote object keeps no %s; uploading it again",
                 run.download.id, "MD5" if whole_md5.wanted(upload.uploader) else "CRC32C")
        return
    if is_the_file(upload, stored):
        with run.download.lock:
            run.download.record.extra["skipped"] = True
        names = " and ".join(comparing.NAMES[name] for name in theirs)
        raise Skip(f"{upload.url} has this file's size and {names} already; skipped")


def check_stored(run: Run, upload: UploadState, whole: int, md5: str | None) -> None:
    """Compare the service's checksum of the object with laden's of the file (its MD5
    when `md5` is given, else its CRC32C); where the service keeps the MD5 as laden gave
    it, check its committed parts instead (`given_md5`)."""
    download = run.download
    stored = stored_after_commit(run, upload)
    if md5 is not None and given_md5.keeps_given(upload.uploader):
        entries = given_md5.checked(upload, md5, download.options)  # not the MD5 it was given
        with download.lock:
            download.record.checksums = [c for c in download.record.checksums
                                         if c.get("origin") not in ("the service", "laden")]
            download.record.checksums.extend(entries)
        return
    if md5 is not None:
        algorithm, ours, theirs = "md5", md5, stored.md5
    else:
        algorithm, ours = "crc32c", f"{whole:08x}"
        theirs = f"{crc32c.decoded(stored.crc32c):08x}" if stored.crc32c else None
    with download.lock:
        download.record.checksums = [c for c in download.record.checksums
                                     if c.get("origin") != "the service"]
        download.record.checksums.append({
            "algorithm": algorithm, "expected": ours, "origin": "the service",
            "actual": theirs, "verified": None if theirs is None else theirs == ours})
    if theirs is None:
        log.info("upload %s: the service keeps no %s of the object; its size matched",
                 download.id, algorithm.upper())
    elif theirs != ours:
        raise ChecksumMismatch(algorithm, ours, theirs, source="the object after the upload")


def stored_after_commit(run: Run, upload: UploadState) -> StoredObject:
    """The object the commit made; TransferError when it is not there with the file's size."""
    stored = upload.uploader.stored(upload.url, run.download.options)
    if stored is None or stored.size != upload.size:
        found = "is not there" if stored is None else f"has {stored.size} bytes"
        raise TransferError(f"after the upload, {upload.url} {found}; the file has "
                            f"{upload.size}")
    return stored


def mark_done(run: Run, size: int, message: str) -> None:
    """The upload is committed: its journal keeps no unfinished upload, and it is done."""
    download = run.download
    record = download.record
    with download.lock:
        assert record.upload is not None
        record.upload.pop("committing", None)
        record.upload["upload_id"] = None
        record.upload["parts"] = {}
        record.finished = time.time()
        record.message = message
        download.set_done_ranges([(0, size)] if size else [])
        download.speed = 0.0
        download.connections.clear()
        run.set_state(State.DONE)
    run.save()
    run.emit(events.Completed(download.id, download.info()))
