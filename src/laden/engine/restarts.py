"""Going back to zero: when a download starts again from the first byte, and when it gives up.

A changed remote file, a server that stops honouring ranges or a checksum mismatch each
restart the download, a few times at most. A changed ETag from a tokenized link does not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core.errors import ChecksumMismatch, LadenError, RangeNotSupported, TransferError
from ..core.states import State
from . import events
from .checkpoints import checkpoint
from .partfile import remove_partial

if TYPE_CHECKING:
    from .transfer import Transfer

MAX_RESTARTS = 3


def etag_is_a_token(transfer: Transfer) -> bool:
    """Policy for tokenized links: a server (often a CDN) that sends a new ETag with every
    answer while the size and Last-Modified stay the same. Such an ETag never matches an
    If-Range, so trusting it would restart the download forever.

    Two more probes decide, once per download: if they show two more ETags with the same
    size and Last-Modified, the ETag is dropped for good (recorded in the journal) and
    Last-Modified plus size are what later reads and resumes check. The download goes on
    with the bytes it has. Otherwise the change is real and the caller restarts.
    """
    record = transfer.download.record
    remote = transfer.remote
    if record.extra.get("etag_is_a_token") or not remote.etag or remote.size is None:
        return False
    try:
        probes = [transfer.source.probe(record.url, transfer.download.options) for _ in range(2)]
    except LadenError:
        return False
    if len({remote.etag, *(p.etag for p in probes)}) < 3 or any(
        p.size != remote.size or p.last_modified != remote.last_modified for p in probes
    ):
        return False
    wait_connections_gone(transfer)
    if transfer.stop_reason is not None:
        return False  # paused or cancelled meanwhile: the caller ends the attempt
    checkpoint(transfer, final=True)  # keep what this attempt wrote: same size and date
    with transfer.download.lock:
        record.extra["etag_is_a_token"] = True
        record.etag = record.version = None
    transfer.failure = None
    transfer.stop_event.clear()
    transfer.download.add_error(
        "the server sends a new ETag with every answer (a tokenized link); laden checks "
        "Last-Modified and the size instead")
    return True


def restart_after(transfer: Transfer, exc: TransferError) -> bool:
    """Go back to zero after `exc`; False when it has happened too often to try again.

    A server that answers a range with the whole file is asked for one stream from then on,
    for good (recorded in the journal): some servers and caches answer some ranges with 206 and
    others with 200, and restarting with ranges again would only meet the next 200.

    A checksum mismatch fails at once when the remote file is still the version that was
    downloaded: fetching the same bytes again would give the same digest. It starts again only
    when the remote changed meanwhile, or when the first bytes came from a file that was
    already there (`--conflict resume`).
    """
    record = transfer.download.record
    if isinstance(exc, RangeNotSupported):
        with transfer.download.lock:
            record.supports_ranges = False
            record.extra["one_stream"] = True
    elif isinstance(exc, ChecksumMismatch):
        if record.extra.pop("adopted_file", None):
            exc = ChecksumMismatch(exc.algorithm, exc.expected, exc.actual,
                                   source=f"{exc.source}; the file that was already there is "
                                          "not the start of this download")
        elif not _changed_since(transfer):
            transfer._end(State.FAILED, str(exc), error=exc)
            return False
        transfer._restarts += 1
    else:
        transfer._restarts += 1
    if transfer._restarts > MAX_RESTARTS:
        transfer._end(State.FAILED, f"{exc}; it changed {transfer._restarts} times, giving up",
                      error=exc)
        return False
    wait_connections_gone(transfer)
    if transfer.stop_reason is not None:
        return False  # paused or cancelled meanwhile: the user's request wins
    # The failure that led here stopped the connections; the next attempt starts afresh.
    transfer.stop_event.clear()
    reset(transfer, f"{exc}; starting again from the first byte")
    return True


def _changed_since(transfer: Transfer) -> bool:
    """True when a new probe shows another version of the remote file than was downloaded."""
    try:
        fresh = transfer.source.probe(transfer.download.record.url, transfer.download.options)
    except LadenError:
        return False
    return not transfer.remote.same_version(fresh) and (
        fresh.size != transfer.remote.size or bool(fresh.version or fresh.last_modified)
    )


def wait_connections_gone(transfer: Transfer) -> None:
    deadline = time.monotonic() + 30
    while transfer.download.connections and time.monotonic() < deadline:
        time.sleep(0.02)


def reset(transfer: Transfer, reason: str) -> None:
    download = transfer.download
    with download.lock:
        download.record.done_ranges = []
        download._bytes_done_cache = 0
        download.plan = None
        for checksum in download.record.checksums:
            checksum["actual"] = checksum["verified"] = None
    transfer._drop_hasher()
    transfer.plan = None
    transfer.failure = None
    transfer.part.close()
    remove_partial(download.record)
    download.add_error(reason)
    transfer.ctx.save(download)
    transfer.ctx.emit(events.Restarted(download.id, reason, download.info()))
