"""The upload direction for a service that takes a file whole (`sources.whole_uploads`).

The same seam as `direction.UploadDirection`, without the part loop: `prepare` pins the file
and hashes it (SHA-256, kept in the journal with the pin, so a rerun of an unchanged file does
not hash it again), settles the conflict policy skip and a commit laden may have made before it
stopped; `begin` asks for no connection; `finish` hands the file to the uploader as a
`PinnedReader` (progress, rate limit, pause and cancel, the pin checked at its last byte and
again just before the commit), then compares the service's checksum of the committed file with
its own. A stop mid-file (pause, cancel, a crash) commits nothing: the service keeps whole
objects only, so the next run sends what it lacks (the interrupted file again, whole) and
nothing it holds already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...core.errors import ChecksumMismatch, LadenError, LocalFileChanged, Retryable, TransferError
from ...core.states import State
from ..seam import Change, Skip
from . import commits
from .changes import judged, on_change_of, restarts_on_change, stop_error
from .local import LocalFile, Pin, pin
from .parts import part_size
from .state import fresh
from .whole_reader import PinnedReader, git_blob_id, sha256_of

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ...sources.whole_uploads import StoredFile, WholeFileUploader
    from ..download import Download
    from ..seam import PieceSink, Run

def sends_whole(sources: SourceRegistry, url: str) -> bool:
    """Whether uploads to `url` go whole, through this direction."""
    try:
        return bool(getattr(sources.uploader_for(url), "whole_file", False))
    except LadenError:
        return False  # the part direction's `prepare` says what is wrong


class WholeFileDirection:
    """One whole-file upload's side of the seam."""

    moving = State.UPLOADING
    word = "upload"
    plan = None
    hasher = None
    pieces = None

    def __init__(self, download: Download) -> None:
        self.download = download
        self.host = ""
        self._local: LocalFile | None = None
        self._uploader: WholeFileUploader | None = None
        self.checks: list[dict[str, Any]] = []
        """The last comparison of the service's file with the local one (`_differences`)."""

    @property
    def reader(self) -> LocalFile:
        assert self._local is not None
        return self._local

    @property
    def sink(self) -> PieceSink:
        raise TypeError("a whole-file upload has no byte loop: its uploader reads the file")

    @property
    def journal(self) -> dict[str, Any]:
        upload = self.download.record.upload
        assert upload is not None
        return upload

    # -- before the first byte ---------------------------------------------------------------

    def prepare(self, run: Run) -> bool:
        record = self.download.record
        run.set_state(State.CONNECTING)
        uploader: WholeFileUploader = run.sources.uploader_for(record.url)  # type: ignore[assignment]
        self._uploader = uploader
        self.host = urlsplit(record.url).hostname or ""
        assert record.dest is not None
        now = pin(record.dest)
        pinned = Pin.from_journal(self.journal["pinned"])
        if pinned != now:
            if self.journal.get("committing") and self._committed_as_journalled(pinned):
                self._mark_done(run, "it was committed before laden stopped; the local file "
                                     "changed since", size=pinned.size)
                return False
            self._pin_again(run, now)
        if self._local is not None:
            self._local.close()
        self._local = local = LocalFile(record.dest, now)
        with self.download.lock:
            record.size = now.size
        if not self.journal.get("sha256"):
            live = run.connection(0)
            live.last_status = "hashing (sha256)"
            digest = sha256_of(local, run)
            run.drop_connection(0)
            with self.download.lock:
                self.journal["sha256"] = digest
            run.save()
        if self.journal.get("committing") and self._there(run):
            self._mark_done(run, "it was committed before laden stopped")
            return False
        if self.journal.get("conflict") == "skip" and self._there(run):
            with self.download.lock:
                record.extra["skipped"] = True
            raise Skip(f"{record.url} has this file's size and checksum already; skipped")
        return True

    def _pin_again(self, run: Run, now: Pin) -> None:
        """The file changed since the upload began (it was hashed): the upload stops unless
        its `on_change` policy is restart; then the file is hashed again, and a commit of the
        old version being asked for is said."""
        download = self.download
        was_committing = self.journal.get("committing")
        if self.journal.get("sha256") and not restarts_on_change(self.journal):
            raise stop_error(LocalFileChanged(f"{download.record.dest} changed since the upload "
                                           "began"))
        with download.lock:
            download.record.upload = {**fresh(now, part_size(now.size, 0, 1),
                                              self.journal.get("conflict", "overwrite")),
                                      **on_change_of(self.journal)}
            download.record.done_ranges = []
        if was_committing:
            download.add_error(f"{download.record.dest} changed since the upload began; "
                               "sending it again")
        run.save()

    def _committed_as_journalled(self, pinned: Pin) -> bool:
        """Whether the commit the journal says was asked for made the file, judged without the
        local file (it changed since): a large (LFS) file at the address with the pinned size
        and the SHA-256 journalled for it. A small file's blob id is of bytes that are gone:
        the change stops the upload as before."""
        assert self._uploader is not None
        stored = self._uploader.stored(self.download.record.url, self.download.options)
        digest = self.journal.get("sha256")
        return bool(stored is not None and digest and stored.sha256
                    and stored.sha256.lower() == digest and stored.size == pinned.size)

    def _there(self, run: Run) -> bool:
        """Whether the service holds the file's content at the address already."""
        assert self._uploader is not None
        stored = self._uploader.stored(self.download.record.url, self.download.options)
        return stored is not None and not self._differences(run, stored)

    def _differences(self, run: Run, stored: StoredFile) -> list[dict[str, Any]]:
        """The checks of `stored` against the file that failed, each as a checksum entry;
        all of them, passed or not, are recorded in `self.checks`."""
        local = self.reader
        size = local.size
        if stored.sha256 is not None:
            # The LFS oid is the SHA-256 laden declared: the same one says the hub holds that
            # object, not that its bytes were hashed again, so it is laden's, never "verified".
            checks = [{"algorithm": "sha256", "expected": self.journal["sha256"],
                       "actual": stored.sha256.lower(), "origin": "laden"}]
        else:  # a small file, kept by git itself: its blob id is of its content
            checks = [{"algorithm": "git-sha1", "expected": git_blob_id(local, run),
                       "actual": (stored.blob_id or "").lower() or None,
                       "origin": "the service"}]
        for check in checks:
            same = check["actual"] == check["expected"] and stored.size == size
            check["verified"] = (None if check["actual"] is None else
                                 None if same and check["origin"] == "laden" else same)
        self.checks = checks
        return [c for c in checks if c["verified"] is False] + (
            [{"algorithm": "size", "expected": str(size), "actual": str(stored.size)}]
            if stored.size != size else [])

    def begin(self, run: Run, connections: int) -> bool:
        return False  # no byte loop: `finish` hands the file to the uploader

    def checkpoint(self, run: Run, *, final: bool = False, flush: bool = False) -> None:
        """Nothing to record between the steps: the journal is written at each of them."""

    # -- the send and the commit -------------------------------------------------------------

    def finish(self, run: Run) -> None:
        """Send and commit, trying again as the retry policy allows: the steps are whole
        requests, so there is no byte loop's connection to retry them."""
        attempt = 0
        while True:
            try:
                revision = self._send(run)
                break
            except Retryable as exc:
                attempt += 1
                if not run.backoff(attempt, exc):
                    raise
                if self.journal.get("committing") and self._there(run):
                    # The commit was made; its answer was lost on the way.
                    self._record_checks(None)
                    self._mark_done(run, "committed (the service's answer to the commit was "
                                         "lost)")
                    return
        self._check(run, revision)

    def _send(self, run: Run) -> str:
        uploader, local = self._uploader, self.reader
        assert uploader is not None
        download = self.download
        body = PinnedReader(local, run)

        def before_commit() -> None:
            local.check()
            with download.lock:
                self.journal["committing"] = True
            run.save()

        try:
            return uploader.send_file(download.record.url, body, local.size,
                                      self.journal["sha256"], download.options,
                                      only_new=self.journal.get("conflict") == "fail",
                                      before_commit=before_commit)
        finally:
            body.finished()

    def _check(self, run: Run, revision: str) -> None:
        """Compare the service's checksum of the committed file with the file's."""
        uploader = self._uploader
        assert uploader is not None
        download = self.download
        url = download.record.url
        run.set_state(State.VERIFYING)
        stored = uploader.stored(url, download.options, revision=revision)
        if stored is None:
            raise TransferError(f"after the upload, {url} is not there at {revision}")
        failed = self._differences(run, stored)
        self._record_checks(revision)
        if failed:
            first = failed[0]
            raise ChecksumMismatch(first["algorithm"], first["expected"], str(first["actual"]),
                                   source="the file after the upload")
        self._mark_done(run, "")

    def _record_checks(self, revision: str | None) -> None:
        """Keep the last comparison (`self.checks`) in the record, with the revision."""
        download = self.download
        with download.lock:
            record = download.record
            record.checksums = [c for c in record.checksums
                                if c.get("origin") not in ("the service", "laden")]
            record.checksums.extend(c for c in self.checks if c["algorithm"] != "size")
            if revision is not None:
                self.journal["revision"] = revision

    def _mark_done(self, run: Run, message: str, *, size: int | None = None) -> None:
        commits.mark_done(run, self.reader.size if size is None else size, message)

    # -- changes and endings -----------------------------------------------------------------

    def judge_change(self, run: Run, exc: TransferError) -> tuple[Change, TransferError]:
        return judged(self.journal, exc)

    def go_on(self, run: Run, change: Change, exc: TransferError) -> None:
        if change is not Change.KEEP:
            self.download.add_error(f"{exc}; sending the file again")
            run.save()

    def close(self, run: Run) -> None:
        if self._local is not None:
            self._local.close()
        if self.download.state is not State.DONE:
            run.save()
