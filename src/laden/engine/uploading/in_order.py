"""Uploads to a service that takes the file in order, as one stream (GCS, FTP).

Such a service keeps a prefix of the file and says how long it is (`offset`); a resume goes on
from there, not from what the journal remembers. So: one connection, the plan's pieces taken
front to back and only one at a time (`InOrderPlan`), and a sink (`StreamSink`) that hands
each piece's bytes to the service's chunk writer. A piece counts once the service confirmed
it; a piece that failed is read again from its first byte, and the sink drops the bytes the
service already holds (it asks for the offset again after any failure), so nothing is sent
twice and nothing is skipped. The whole file's CRC32C (and its MD5, where the service checks
or keeps one) is computed in order on the way (reading the file's start again after a resume),
given with the last chunk, and compared with the object's after the commit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import threading
from typing import TYPE_CHECKING

from ...core.errors import (
    ChecksumMismatch,
    DestinationExists,
    Retryable,
    TransferError,
    UploadLost,
    UploadUnusable,
)
from ...core.states import State
from ...sources.in_order_uploads import FileChecksums
from ..seam import Skip
from ..segments import Segment, SegmentPlan
from . import commits, crc32c

if TYPE_CHECKING:
    from ...sources.in_order_uploads import ChunkWriter, InOrderUploader
    from ...sources.uploads import StoredObject
    from ..seam import Run
    from .local import LocalFile
    from .state import UploadState

log = logging.getLogger("laden.transfer")
READ = 8 * 1024 * 1024


class InOrderPlan(SegmentPlan):
    """Pieces taken front to back, one at a time: a connection asking while another piece is
    on its way gets nothing and ends, so one connection sends."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._taking = threading.Lock()

    def take(self, connection: int) -> Segment | None:
        with self._taking:
            if self.active():
                return None
            return super().take(connection)


def start(run: Run, upload: UploadState) -> tuple[StreamSink, InOrderPlan]:
    """Settle where the service's copy ends (a new upload when there is none, or it is
    lost), and plan the rest."""
    download = run.download
    uploader: InOrderUploader = upload.uploader  # type: ignore[assignment]
    options = download.options
    held = 0
    upload_id = upload.journal.get("upload_id")
    if upload_id and uploader.conflict_at_begin \
            and upload.journal.get("session_only_new") is not upload.only_new:
        # Added again with another conflict policy: the session would keep the old one.
        download.add_error("the conflict policy is not the one the upload session was opened "
                           "with; starting again from the first byte in a new session")
        _drop(uploader, upload, upload_id)
        upload_id = None
    if upload_id:
        try:
            held = uploader.offset(upload.url, upload_id, upload.size, options)
        except UploadLost as exc:
            download.add_error(f"{exc}; starting again from the first byte")
            _drop(uploader, upload, upload_id)
            upload_id = None
    if not upload_id:
        # The service (or, for FTP, the check before the rename) decides at the commit; asking
        # first spares sending a whole file only to be refused.
        if upload.only_new and uploader.stored(upload.url, options) is not None:
            raise DestinationExists(f"{upload.url} exists already, and the conflict policy is "
                                    "fail; nothing was sent")
        upload_id = uploader.begin_in_order(upload.url, upload.size, options,
                                            only_new=upload.only_new,
                                            file_tag=upload.local.pinned.tag())
        held = 0
        with download.lock:
            upload.journal["upload_id"] = upload_id
            upload.journal["session_only_new"] = upload.only_new
            upload.journal["parts"] = {}
    with download.lock:
        download.record.done_ranges = [(0, held)] if held else []
    run.save()
    piece = upload.size if uploader.one_stream else upload.part_size
    plan = InOrderPlan(upload.size, [(0, held)], min_size=piece, piece_size=piece)
    md5 = uploader.takes_md5(upload.url, options)
    return StreamSink(run, upload, held, piece, md5=md5), plan


def _drop(uploader: InOrderUploader, upload: UploadState, upload_id: str) -> None:
    """Abort an upload that will not be continued, and forget it."""
    try:
        uploader.abort(upload.url, upload_id, upload.download.options)
    except TransferError as exc:
        log.warning("upload %s: could not drop the unfinished upload: %s", upload.download.id,
                    exc)
    upload.forget_upload()


class StreamSink:
    """The in-order upload's piece sink."""

    direct = False

    def __init__(self, run: Run, upload: UploadState, held: int, piece: int, *,
                 md5: bool) -> None:
        self._run = run
        self._upload = upload
        self._uploader: InOrderUploader = upload.uploader  # type: ignore[assignment]
        self._held: int | None = held
        """What the service holds; None after a failure, until it is asked again."""
        self._piece = piece
        self._writer: ChunkWriter | None = None
        self._open = False
        self._at = 0
        """The offset the next write of the open piece is expected at."""
        self._from = self._end = 0
        """The open piece sends bytes [_from, _end): those below _from the service has."""
        self.hashes = RunningHashes(upload.local, md5=md5)

    def write(self, data: memoryview, offset: int, *, placed: bool = False) -> None:
        try:
            if not self._open or offset != self._at:  # a new piece, or one read again
                self._open_piece(offset)
            self.hashes.feed(data, offset)
            end = offset + len(data)
            if self._writer is not None and end > self._from:
                self._writer.write(data[max(0, self._from - offset):])
            self._at = end
            if end == self._end:
                self._finish_piece()
        except BaseException:
            self.close()
            raise

    def _open_piece(self, offset: int) -> None:
        self.close()
        upload = self._upload
        if self._held is None:
            self._held = self._uploader.offset(upload.url, self._upload_id, upload.size,
                                               upload.download.options)
        if self._held < offset:
            raise UploadUnusable(f"the service holds {self._held} bytes of the upload to "
                                 f"{upload.url}, fewer than it confirmed")
        self._end = min((offset // self._piece + 1) * self._piece, upload.size)
        self._from = min(self._held, self._end)
        self._at = offset
        self._open = True
        if self._from < self._end:
            self._writer = self._uploader.writer(upload.url, self._upload_id, self._from,
                                                 self._end, upload.size,
                                                 upload.download.options)

    def _finish_piece(self) -> None:
        upload = self._upload
        download = upload.download
        upload.local.check()  # a file changed since its first byte must not go on
        whole = None
        if self._end == upload.size:
            whole = self.hashes.whole(upload.size)
            upload.before_commit(crc32c.decoded(whole.crc32c))
        writer, self._writer, self._open = self._writer, None, False
        try:
            held = self._held if writer is None else writer.finish(whole)
        except DestinationExists:
            self._give_up()
            raise
        except BaseException:
            self._held = None  # it may have taken the piece, or part of it: asked again
            raise
        assert held is not None  # `_open_piece` asked
        if writer is not None and held > self._end:
            self._held = None
            raise UploadUnusable(
                f"the service holds {held} bytes of the unfinished upload to {upload.url}, "
                f"more than the {self._end} laden sent (some were taken twice); it is not "
                "committed")
        self._held = held
        with download.lock:
            download.record.done_ranges = [(0, min(held, upload.size))] if held else []
        self._run.save()
        if held < self._end:
            raise Retryable(f"the service kept {held} of the first {self._end} bytes; sending "
                            "the rest again")

    def _give_up(self) -> None:
        """The service refused to finish the upload (the name is taken, and the policy is
        fail): it can never finish, so it is dropped, and a rerun starts afresh."""
        upload = self._upload
        try:
            self._uploader.abort(upload.url, self._upload_id, upload.download.options)
        except TransferError as exc:
            log.warning("upload %s: could not drop the refused upload: %s",
                        upload.download.id, exc)
        upload.forget_upload()
        self._run.save()

    @property
    def _upload_id(self) -> str:
        return str(self._upload.journal["upload_id"])

    def close(self) -> None:
        """Drop an unfinished piece; the service keeps what it kept, asked again next time."""
        writer, self._writer, self._open = self._writer, None, False
        if writer is not None:
            self._held = None
            try:
                writer.abort()
            except Exception as exc:  # noqa: BLE001 - the next offset query tells the truth
                log.info("upload %s: dropping a chunk: %s", self._upload.download.id, exc)

    def splice_in(self, pipe: int, count: int, offset: int) -> None:
        """Never called: an upload reads a local file (see `parts.PartSink.splice_in`)."""
        raise TypeError("an upload's bytes are sent from memory, not spliced")


class RunningHashes:
    """CRC32C and MD5 of the file, taken in order from the bytes written; what a resume
    skipped is read again from the file."""

    def __init__(self, local: LocalFile, *, md5: bool = True) -> None:
        self._local = local
        self._at = 0
        self._crc = crc32c.of(b"")
        self._md5 = hashlib.md5() if md5 else None

    def feed(self, data: memoryview | bytes, offset: int) -> None:
        if offset > self._at:
            self._read_to(offset)
        skip = self._at - offset
        if skip < len(data):
            part = bytes(data[skip:])
            self._crc = crc32c.extend(self._crc, part)
            if self._md5 is not None:
                self._md5.update(part)
            self._at = offset + len(data)

    def _read_to(self, end: int) -> None:
        view = memoryview(bytearray(READ))
        reader = self._local.open_range(self._at, end)
        while n := reader.readinto(view):
            self.feed(view[:n], self._at)

    def whole(self, size: int) -> FileChecksums:
        if self._at < size:
            self._read_to(size)
        self._local.check()
        md5 = self._md5 and base64.b64encode(self._md5.digest()).decode("ascii")
        return FileChecksums(size, crc32c.encoded(self._crc), md5)


def finish(run: Run, upload: UploadState, sink: StreamSink) -> None:
    """Every byte is at the service: give the object its name (FTP's rename; GCS finalised
    it with the last chunk) and compare it with the file."""
    uploader: InOrderUploader = upload.uploader  # type: ignore[assignment]
    whole = sink.hashes.whole(upload.size)
    upload.before_commit(crc32c.decoded(whole.crc32c))
    uploader.commit(upload.url, str(upload.journal["upload_id"]), upload.size,
                    run.download.options, only_new=upload.only_new)
    run.set_state(State.VERIFYING)
    check(run, upload, whole)


def check(run: Run, upload: UploadState, whole: FileChecksums) -> None:
    """Compare the object with the file: its size, and each checksum the service has."""
    download = run.download
    stored = commits.stored_after_commit(run, upload)
    compared = _compared(stored, whole)
    with download.lock:
        download.record.checksums = [c for c in download.record.checksums
                                     if c.get("origin") != "the service"]
        for algorithm, ours, theirs in compared:
            download.record.checksums.append({
                "algorithm": algorithm, "expected": ours, "origin": "the service",
                "actual": theirs, "verified": theirs == ours})
        if not compared:  # the file's own, so that `laden verify` can check it later
            download.record.checksums.append({
                "algorithm": "crc32c", "expected": base64.b64decode(whole.crc32c).hex(),
                "origin": "the service", "actual": None, "verified": None})
    if not compared:
        log.info("upload %s: the service offers no checksum of the object; its size matched",
                 download.id)
    for algorithm, ours, theirs in compared:
        if theirs != ours:
            raise ChecksumMismatch(algorithm, ours, theirs, source="the object after the upload")


def skip_if_same(run: Run, upload: UploadState) -> None:
    """The conflict policy skip: raise Skip when the object has the file's size and the
    checksums the service has (its size alone when it offers none, and say so)."""
    stored = upload.uploader.stored(upload.url, run.download.options)
    if stored is None or stored.size != upload.size:
        return
    whole = RunningHashes(upload.local, md5=bool(stored.md5)).whole(upload.size)
    compared = _compared(stored, whole)
    if any(theirs != ours for _algorithm, ours, theirs in compared):
        return
    how = (" and ".join(a.upper() for a, _, _ in compared) if compared
           else "only: the service offers no checksum to compare")
    with run.download.lock:
        run.download.record.extra["skipped"] = True
    raise Skip(f"{upload.url} has this file's size and {how} already; skipped"
               if compared else f"{upload.url} has this file's size already (size {how}); "
               "skipped")


def committed_before(run: Run, upload: UploadState) -> bool:
    """Whether laden stopped between the commit and the journal's record of it: the object
    has the file's size and checksums. Where the service keeps no checksum (FTP without a
    checksum command), an object of the same size may be an older file, and the unfinished
    upload being gone proves nothing (someone may have removed it): that cannot be told, so
    it is said, and the file is sent again rather than taken as done."""
    uploader: InOrderUploader = upload.uploader  # type: ignore[assignment]
    options = run.download.options
    stored = uploader.stored(upload.url, options)
    if stored is None or stored.size != upload.size:
        return False
    whole = RunningHashes(upload.local, md5=bool(stored.md5)).whole(upload.size)
    compared = _compared(stored, whole)
    if compared:
        return all(theirs == ours for _algorithm, ours, theirs in compared)
    upload_id = upload.journal.get("upload_id")
    with contextlib.suppress(UploadLost):  # gone: no better a proof than an empty one
        if upload_id and uploader.offset(upload.url, upload_id, upload.size, options):
            return False  # still there, not renamed yet
    run.download.add_error(f"laden stopped while renaming the upload to {upload.url}, and the "
                           "service keeps no checksum: whether the file of the same size there "
                           "is this one cannot be told, so it is sent again")
    return False


def _compared(stored: StoredObject, whole: FileChecksums) -> list[tuple[str, str, str]]:
    """(algorithm, ours, theirs) in hex, for each checksum the service gave (its CRC32C in
    base64, its MD5 in hex)."""
    pairs = []
    if stored.crc32c:
        pairs.append(("crc32c", _hex(whole.crc32c), _hex(stored.crc32c)))
    if stored.md5 and whole.md5:
        pairs.append(("md5", _hex(whole.md5), stored.md5.lower()))
    return pairs


def _hex(base64_text: str) -> str:
    return base64.b64decode(base64_text).hex()
