"""The download direction: bytes read from a source's ranges, written into a partial file.

What the coordinator asks of a `seam.Direction`, done for a download by the steps beside this
module: `probing` (ask the server, take its answer), `preparing` (the partial file and the
plan), `checkpoints`, `finishing` (verify, rename, record done) and `restarts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...core.states import State
from ...store.journal import boot_id
from ..seam import Change
from . import checkpoints, finishing, preparing, probing, restarts
from .files import DownloadFiles

if TYPE_CHECKING:
    from ...core.errors import TransferError
    from ..partfile import PartialFile
    from ..seam import Run


class DownloadDirection(DownloadFiles):
    """One download's side of the seam; it is its own piece reader (see `DownloadFiles`)."""

    moving = State.DOWNLOADING
    word = "download"

    @property
    def reader(self) -> DownloadFiles:
        return self

    @property
    def sink(self) -> PartialFile:
        return self.part

    def prepare(self, run: Run) -> bool:
        download = run.download
        record = download.record
        with download.lock:
            # Bytes written from now on belong to this boot; `adopt` saves it before any
            # progress is recorded (progress records carry only the ranges).
            record.boot_id = boot_id()
            record.pieces = None  # they describe the finished file: it is written anew
        run.set_state(State.CONNECTING)
        self.source = run.sources.for_url(record.url)
        self.host = urlsplit(record.url).hostname or ""
        named_before = record.dest is not None  # by an earlier attempt or session
        self.remote = probing.probe(run, self)
        probing.adopt(run, self, self.remote)
        # A name chosen just now was free: nothing can have been renamed to it yet.
        if named_before and finishing.renamed_before_a_crash(run, self):
            finishing.mark_done(run)
            finishing.announce_done(run)
            return False
        preparing.prepare_file(run, self)
        return True

    def begin(self, run: Run, connections: int) -> bool:
        return preparing.ready_bytes(run, self, connections)

    def checkpoint(self, run: Run, *, final: bool = False, flush: bool = False) -> None:
        checkpoints.checkpoint(run, self, final=final, flush=flush)

    def finish(self, run: Run) -> None:
        flush = run.config.flush_on_finish
        if flush or self.probe_body() is None:
            # A file that came whole with the probe is verified and renamed a moment later;
            # after a crash before the rename it is fetched again in one request, and after
            # one between the rename and the journal's record of it, the bytes at its final
            # name are compared with the probe's (`destination.renamed_whole`). So its
            # ranges need no journal write of their own (a third of a small file's writes).
            checkpoints.checkpoint(run, self, final=True, flush=flush)
        finishing.verify(run, self)
        finishing.finish_download(run, self)

    def judge_change(self, run: Run, exc: TransferError) -> tuple[Change, TransferError]:
        return restarts.judge_change(run, self, exc)

    def go_on(self, run: Run, change: Change, exc: TransferError) -> None:
        if change is Change.KEEP:
            restarts.keep_going(run, self)
        else:
            restarts.reset(run, self, f"{exc}; starting again from the first byte")

    def close(self, run: Run) -> None:
        self.drop_hasher()
        if run.download.state is not State.DONE:  # a finished download's record is saved
            checkpoints.checkpoint(run, self, final=True)
        self.part.close()
