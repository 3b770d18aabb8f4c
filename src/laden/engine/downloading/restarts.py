"""Going back to zero: what a changed remote, a refused range or a checksum mismatch means for
a download, and how it starts again from the first byte.

Each of them restarts the download (the coordinator counts, and gives up after a few). A
changed ETag from a tokenized link does not: the bytes are kept. A mismatch of a remote file
that did not change fails at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import ChecksumMismatch, LadenError, RangeNotSupported, RemoteChanged
from .. import events
from ..partfile import remove_partial
from ..seam import Change
from .checkpoints import checkpoint

if TYPE_CHECKING:
    from ...core.errors import TransferError
    from ..seam import Run
    from .files import DownloadFiles

TOKEN_NOTE = ("the server sends a new ETag with every answer (a tokenized link); laden checks "
              "Last-Modified and the size instead")


def judge_change(run: Run, files: DownloadFiles, exc: TransferError
                 ) -> tuple[Change, TransferError]:
    """What `exc` means for this download.

    A server that answers a range with the whole file is asked for one stream from then on,
    for good (recorded in the journal): some servers and caches answer some ranges with 206 and
    others with 200, and restarting with ranges again would only meet the next 200.

    A checksum mismatch fails at once when the remote file is still the version that was
    downloaded: fetching the same bytes again would give the same digest. It starts again only
    when the remote changed meanwhile, or when the first bytes came from a file that was
    already there (`--conflict resume`).
    """
    record = run.download.record
    if isinstance(exc, RemoteChanged) and etag_is_a_token(files):
        return Change.KEEP, exc
    if isinstance(exc, RangeNotSupported):
        with run.download.lock:
            record.supports_ranges = False
            record.extra["one_stream"] = True
    elif isinstance(exc, ChecksumMismatch):
        if record.extra.pop("adopted_file", None):
            exc = ChecksumMismatch(exc.algorithm, exc.expected, exc.actual,
                                   source=f"{exc.source}; the file that was already there is "
                                          "not the start of this download")
        elif not _changed_since(files):
            return Change.FAIL, exc
    return Change.RESTART, exc


def etag_is_a_token(files: DownloadFiles) -> bool:
    """Policy for tokenized links: a server (often a CDN) that sends a new ETag with every
    answer while the size and Last-Modified stay the same. Such an ETag never matches an
    If-Range, so trusting it would restart the download forever.

    Two more probes decide, once per download: if they show two more ETags with the same
    size and Last-Modified, the ETag is dropped for good (recorded in the journal, see
    `keep_going`) and Last-Modified plus size are what later reads and resumes check. The
    download goes on with the bytes it has. Otherwise the change is real and it restarts.
    """
    record = files.download.record
    remote = files.remote
    if record.extra.get("etag_is_a_token") or not remote.etag or remote.size is None:
        return False
    try:
        probes = [files.probe_again() for _ in range(2)]
    except LadenError:
        return False
    return len({remote.etag, *(p.etag for p in probes)}) >= 3 and all(
        p.size == remote.size and p.last_modified == remote.last_modified for p in probes
    )


def keep_going(run: Run, files: DownloadFiles) -> None:
    """Go on after a tokenized ETag, with the bytes this attempt wrote (same size and date)."""
    checkpoint(run, files, final=True)
    record = run.download.record
    with run.download.lock:
        record.extra["etag_is_a_token"] = True
        record.etag = record.version = None
    run.download.add_error(TOKEN_NOTE)


def _changed_since(files: DownloadFiles) -> bool:
    """True when a new probe shows another version of the remote file than was downloaded."""
    try:
        fresh = files.probe_again()
    except LadenError:
        return False
    return not files.remote.same_version(fresh) and (
        fresh.size != files.remote.size or bool(fresh.version or fresh.last_modified)
    )


def reset(run: Run, files: DownloadFiles, reason: str) -> None:
    download = run.download
    files.drop_hasher()
    files.plan = None
    files.part.close()
    remove_partial(download.record)  # before its ranges go: they may be what says it is ours
    with download.lock:
        download.set_done_ranges([])
        for checksum in download.record.checksums:
            checksum["actual"] = checksum["verified"] = None
    download.add_error(reason)
    run.save()
    run.emit(events.Restarted(download.id, reason, download.info()))
