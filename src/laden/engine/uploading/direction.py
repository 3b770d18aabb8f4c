"""The upload direction: bytes read from a pinned local file, sent to a service in parts.

What the coordinator asks of a `seam.Direction`, done for an upload: `prepare` pins the file
and settles what the service already holds (ListParts: only the missing parts are sent), the
byte loop reads ranges of the file (`local`) into a sink that sends whole parts (`parts`),
`finish` commits them as one object and compares the service's checksum of it with the file's.
The service is reached only through its `sources.uploads.Uploader`: another service is another
uploader, and the same direction. A service that takes the file in order, as one stream (GCS,
FTP: `in_order_uploads.in_order`), has `in_order_direction.InOrderDirection`: this direction
with its own plan, sink, commit and conflict checks (the methods here it replaces say so).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...core.errors import (
    ChecksumMismatch,
    DestinationExists,
    LadenError,
    LocalFileChanged,
    Retryable,
    TransferError,
    UploadLost,
    UploadUnusable,
)
from ...core.states import State
from .. import events
from ..seam import Change, Skip
from ..segments import SegmentPlan
from . import comparing, crc32c, given_md5, whole_md5
from .changes import judged, on_change_of, restarts_on_change
from .local import LocalFile, Pin, pin
from .parts import PartSink, part_size
from .state import UploadState, fresh

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ...sources.uploads import StoredObject, Uploader
    from ..download import Download
    from ..hashing import TrailingHasher
    from ..pieces import PieceRecorder
    from ..seam import Run
    from .in_order import StreamSink

log = logging.getLogger("laden.transfer")

COMMIT_LOOKS = (0.5, 1.0, 2.0, 4.0)
"""Seconds between looks for the object of a commit a killed laden asked for (7.5 s in all)."""


class UploadDirection:
    """One upload's side of the seam."""

    moving = State.UPLOADING
    word = "upload"

    def __init__(self, download: Download) -> None:
        self.download = download
        self.plan: SegmentPlan | None = None
        self.hasher: TrailingHasher | None = None
        self.pieces: PieceRecorder | None = None
        self.host = ""
        self.upload: UploadState | None = None
        self._sink: PartSink | StreamSink | None = None
        self.md5: whole_md5.TrailingMd5 | None = None
        """The file's MD5, for a service that keeps one instead of a CRC32C."""

    @property
    def reader(self) -> LocalFile:
        assert self.upload is not None
        return self.upload.local

    @property
    def sink(self) -> PartSink | StreamSink:
        assert self._sink is not None
        return self._sink

    # -- before the first byte ---------------------------------------------------------------

    def prepare(self, run: Run) -> bool:
        upload = self._ready(run)
        return upload is not None and self._plan_parts(run, upload)

    def _ready(self, run: Run) -> UploadState | None:
        """The file pinned (again, if it changed: `_pin_again`) and the upload's state; None
        when the upload turned out done (committed before laden stopped). Raises Skip for the
        conflict policy skip when the object is the file already."""
        download = run.download
        record = download.record
        run.set_state(State.CONNECTING)
        uploader = run.sources.uploader_for(record.url)
        self.host = urlsplit(record.url).hostname or ""
        assert record.dest is not None and record.upload is not None
        now = pin(record.dest)
        pinned = Pin.from_journal(record.upload["pinned"])
        if pinned != now:
            if record.upload.get("committing") and self._committed_as_journalled(run, uploader):
                self._mark_done(run, pinned.size, "it was committed before laden stopped; the "
                                                  "local file changed since")
                return None
            self._pin_again(run, uploader, now)
        if self.upload is not None:
            self.upload.local.close()
        self.upload = upload = UploadState(run, uploader, LocalFile(record.dest, now))
        with download.lock:
            record.size = upload.size
        if record.upload.get("committing") and self._committed_before(run, upload):
            self._mark_done(run, upload.size, "it was committed before laden stopped")
            return None
        if record.upload.get("conflict") == "skip":
            self._skip_if_there(run, upload)
        return upload

    def _plan_parts(self, run: Run, upload: UploadState) -> bool:
        """Settle the parts the service holds, and plan the rest (the whole file, for one
        request); False when the upload turned out committed."""
        download = run.download
        uploader = upload.uploader
        if not upload.single and self._settle_parts(run, upload):
            self._mark_done(run, upload.size, "it was committed before laden stopped")
            return False
        self._sink = PartSink(upload)
        self.plan = SegmentPlan(upload.size, upload.done_ranges(), min_size=upload.part_size,
                                piece_size=upload.part_size)
        download.plan = self.plan
        self.md5 = whole_md5.follow(self.md5, uploader, upload.local,
                                    lambda: self.plan.done_prefix() if self.plan else 0)
        return True

    def _pin_again(self, run: Run, uploader: Uploader, now: Pin) -> None:
        """The file is not what it was when the upload began: what was sent is of another
        version. The upload stops (nothing is committed) unless its `on_change` policy is
        restart: then it starts again from the first byte, and says why."""
        download = run.download
        record = download.record
        assert record.upload is not None
        old_id = record.upload.get("upload_id")
        sent = old_id or record.upload.get("parts")
        if sent and not restarts_on_change(record.upload):
            raise LocalFileChanged(f"{record.dest} changed since the upload began")
        if old_id:
            _abort_quietly(uploader, record.url, old_id, download)
        with download.lock:
            record.upload = {**fresh(now, part_size(now.size, uploader.min_part,
                                                    uploader.max_parts),
                                     record.upload.get("conflict", "overwrite")),
                             **on_change_of(record.upload)}
            record.done_ranges = []
        if sent:
            download.add_error(f"{record.dest} changed since the upload began; starting again "
                               "from the first byte")
        run.save()

    def _committed_as_journalled(self, run: Run, uploader: Uploader) -> bool:
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

    def _committed_before(self, run: Run, upload: UploadState) -> bool:
        """Whether laden stopped between the commit and the journal's record of it: the
        object is there with the file's size and checksum (in order: replaced)."""
        stored = upload.uploader.stored(upload.url, run.download.options)
        return self._stored_is_the_file(upload, stored)

    def _commit_landed(self, run: Run, upload: UploadState) -> bool:
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
            if self._stored_is_the_file(upload, upload.uploader.stored(upload.url, options)):
                return True
        return False

    def _stored_is_the_file(self, upload: UploadState, stored: StoredObject | None) -> bool:
        """Whether `stored` has the file's size and every checksum the service keeps of it
        (read from the file): this content is there, whoever committed it."""
        if stored is None or stored.size != upload.size or not comparing.kept(stored):
            return False
        local = upload.local
        return comparing.matches(stored, comparing.digests(local, local.pinned,
                                                           comparing.kept(stored)))

    def _skip_if_there(self, run: Run, upload: UploadState) -> None:
        """Raise Skip when the object is the file already (in order: replaced)."""
        stored = upload.uploader.stored(upload.url, run.download.options)
        if stored is None or stored.size != upload.size:
            return
        theirs = comparing.kept(stored)
        if not theirs:
            log.info("upload %s: the remote object keeps no %s; uploading it again",
                     run.download.id, "MD5" if whole_md5.wanted(upload.uploader) else "CRC32C")
            return
        if self._stored_is_the_file(upload, stored):
            with run.download.lock:
                run.download.record.extra["skipped"] = True
            names = " and ".join(comparing.NAMES[name] for name in theirs)
            raise Skip(f"{upload.url} has this file's size and {names} already; skipped")

    def _settle_parts(self, run: Run, upload: UploadState) -> bool:
        """Keep the journalled parts the service still holds with the same ETag; begin an
        upload when there is none (or the service lost it). True when the upload turned out
        committed: the commit of an earlier run finished meanwhile."""
        download = run.download
        options = download.options
        upload_id = upload.journal.get("upload_id")
        if upload_id:
            try:
                held = upload.uploader.parts(upload.url, upload_id, options)
            except UploadLost as exc:
                if self._commit_landed(run, upload):
                    return True
                download.add_error(f"{exc}; starting again from the first byte")
                upload.forget_upload()
                upload_id = None
            else:
                with download.lock:
                    journal = upload.journal
                    kept = {n: v for n, v in journal["parts"].items()
                            if held.get(int(n)) == v[0]}
                    gone = len(journal["parts"]) - len(kept)
                    journal["parts"] = kept
                    download.record.done_ranges = upload.done_ranges()
                if gone:  # Azure's blocks expire, or go at another writer's commit, unnamed
                    download.add_error(_parts_gone(upload.url, gone, bool(kept)))
        if not upload_id:
            upload_id = upload.uploader.begin(upload.url, options,
                                              file_tag=upload.local.pinned.tag())
            with download.lock:
                upload.journal["upload_id"] = upload_id
                upload.journal["parts"] = {}
        run.save()
        return False

    def begin(self, run: Run, connections: int) -> bool:
        assert self.plan is not None
        return not self.plan.finished

    def checkpoint(self, run: Run, *, final: bool = False, flush: bool = False) -> None:
        """Nothing to do: each part is journalled as the service acknowledges it, and a part
        not acknowledged is not kept."""

    # -- the commit --------------------------------------------------------------------------

    def finish(self, run: Run) -> None:
        upload = self.upload
        assert upload is not None
        download = run.download
        if upload.single:
            if not upload.committed:  # an empty file: no byte went through the loop
                upload.send(1, b"", crc32c.of(b""))
            whole = crc32c.decoded(upload.journal["checksum"])
            md5 = self.md5.digest() if self.md5 else None
        else:
            missing = upload.count - len(upload.acknowledged())
            if missing:
                raise Retryable(f"{missing} parts were not acknowledged; sending them again")
            whole = upload.whole_checksum()
            md5 = self.md5.digest() if self.md5 else None
            upload.before_commit(whole)
            try:
                upload.uploader.complete(upload.url, upload.journal["upload_id"],
                                         upload.parts_to_commit(), crc32c.encoded(whole),
                                         download.options, only_new=upload.only_new, md5=md5)
            except DestinationExists:
                self.abandon(run)  # its parts would only cost the owner of the bucket
                raise
            except UploadLost:
                if not self._commit_landed(run, upload):
                    raise
            except Retryable:
                # The connection may have failed after the service committed, taking only
                # its answer (Azure's SDK, told not to, asks no second time): look first.
                if not self._commit_landed(run, upload):
                    raise
        run.set_state(State.VERIFYING)
        self._check_stored(run, upload, whole, md5)
        self._mark_done(run, upload.size, "")

    def _check_stored(self, run: Run, upload: UploadState, whole: int, md5: str | None) -> None:
        """Compare the service's checksum of the object with laden's of the file (its MD5
        when `md5` is given, else its CRC32C); where the service keeps the MD5 as laden gave
        it, check its committed parts instead (`given_md5`)."""
        download = run.download
        stored = upload.uploader.stored(upload.url, download.options)
        if stored is None or stored.size != upload.size:
            found = "is not there" if stored is None else f"has {stored.size} bytes"
            raise TransferError(f"after the upload, {upload.url} {found}; the file has "
                                f"{upload.size}")
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

    def _mark_done(self, run: Run, size: int, message: str) -> None:
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

    # -- changes and endings -----------------------------------------------------------------

    def judge_change(self, run: Run, exc: TransferError) -> tuple[Change, TransferError]:
        return judged(run.download.record.upload or {}, exc)

    def go_on(self, run: Run, change: Change, exc: TransferError) -> None:
        if change is Change.KEEP:
            return
        if not isinstance(exc, UploadLost) or isinstance(exc, UploadUnusable):
            # Aborted unless the service said it is gone: a live upload forgotten would keep
            # costing storage, and a GCS session could still write the object for a week.
            self.abandon(run)
        if self.upload is not None:
            self.upload.forget_upload()
        run.download.add_error(f"{exc}; starting again from the first byte")
        run.save()

    def abandon(self, run: Run) -> None:
        """Abort the unfinished upload at the service, and forget it."""
        abandon(run.sources, run.download)

    def close(self, run: Run) -> None:
        if run.stop_reason in ("cancel", "remove"):
            self.abandon(run)
        if self.upload is not None:
            self.upload.local.close()
        if self.md5 is not None:
            self.md5.close()
            self.md5 = None
        if run.download.state is not State.DONE:
            run.save()


def abandon(sources: SourceRegistry, download: Download) -> None:
    """Abort `download`'s unfinished upload at the service (cancel, remove, a restart), so its
    parts stop costing storage; a failure to reach the service is logged, not raised."""
    record = download.record
    upload_id = (record.upload or {}).get("upload_id")
    if not upload_id:
        return
    try:
        uploader = sources.uploader_for(record.url)
    except LadenError as exc:
        log.warning("upload %s: cannot abort its unfinished upload: %s", download.id, exc)
        return
    _abort_quietly(uploader, record.url, upload_id, download)
    with download.lock:
        if record.upload is not None and record.upload.get("upload_id") == upload_id:
            record.upload["upload_id"] = None
            record.upload["parts"] = {}
            record.done_ranges = []


def _parts_gone(url: str, gone: int, some_kept: bool) -> str:
    """Why parts acknowledged before are sent again: the service no longer holds them."""
    if some_kept:
        return (f"the service no longer holds {gone} of the parts it acknowledged of the upload "
                f"to {url}; sending them again")
    return (f"the service no longer holds the {gone} parts it acknowledged of the upload to "
            f"{url} (they expired, or another writer's commit dropped them); starting again "
            "from the first byte")


def _abort_quietly(uploader: Uploader, url: str, upload_id: str, download: Download) -> None:
    try:
        uploader.abort(url, upload_id, download.options)
    except LadenError as exc:
        log.warning("upload %s: could not abort its unfinished upload: %s", download.id, exc)

