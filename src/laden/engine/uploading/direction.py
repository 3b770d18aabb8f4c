"""The upload direction: bytes read from a pinned local file, sent to a service in parts.

What the coordinator asks of a `seam.Direction`, done for an upload: `prepare` pins the file
and settles what the service already holds (ListParts: only the missing parts are sent), the
byte loop reads ranges of the file (`local`) into a sink that sends whole parts (`parts`),
`finish` commits them as one object and compares the service's checksum of it with the file's.
The service is reached only through its `sources.uploads.Uploader`: another service is another
uploader, and the same direction. A service that takes the file in order, as one stream (GCS,
FTP: `in_order_uploads.in_order`), has `in_order_direction.InOrderDirection`: this direction
with its own plan, sink, commit and conflict checks (the methods here it replaces say so).
The checks of the object at the service, before sending and after a commit, are `commits`'.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...core.errors import (
    DestinationExists,
    LadenError,
    LocalFileChanged,
    Retryable,
    TransferError,
    UploadLost,
    UploadUnusable,
)
from ...core.states import State
from ..seam import Change
from ..segments import SegmentPlan
from . import commits, crc32c, whole_md5
from .changes import judged, on_change_of, restarts_on_change
from .local import LocalFile, Pin, pin
from .parts import PartSink, part_size
from .state import UploadState, fresh

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ...sources.uploads import Uploader
    from ..download import Download
    from ..hashing import TrailingHasher
    from ..pieces import PieceRecorder
    from ..seam import Run
    from .in_order import StreamSink

log = logging.getLogger("laden.transfer")


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
            if record.upload.get("committing") and commits.landed_as_journalled(run, uploader):
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

    def _committed_before(self, run: Run, upload: UploadState) -> bool:
        """Whether laden stopped between the commit and the journal's record of it: the
        object is there with the file's size and checksum."""
        stored = upload.uploader.stored(upload.url, run.download.options)
        return commits.is_the_file(upload, stored)

    def _skip_if_there(self, run: Run, upload: UploadState) -> None:
        """Raise Skip when the object is the file already."""
        commits.skip_if_there(run, upload)

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
                if commits.landed(run, upload):
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
                if not commits.landed(run, upload):
                    raise
            except Retryable:
                # The connection may have failed after the service committed, taking only
                # its answer (Azure's SDK, told not to, asks no second time): look first.
                if not commits.landed(run, upload):
                    raise
        run.set_state(State.VERIFYING)
        commits.check_stored(run, upload, whole, md5)
        self._mark_done(run, upload.size, "")

    def _mark_done(self, run: Run, size: int, message: str) -> None:
        commits.mark_done(run, size, message)

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

