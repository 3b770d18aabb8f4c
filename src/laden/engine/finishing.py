"""The last steps of a download: verify the bytes, rename the partial file, record it done.

Also the one case where those steps already happened: laden stopped between the final rename
and the journal's record of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ..core.errors import Cancelled, DestinationExists, Retryable
from ..core.states import State
from . import events
from .destination import renamed_whole
from .format_check import check_before_rename
from .partfile import finish
from .pieces import PieceRecorder
from .verify import checksums_to_check, hash_file, record_digests

if TYPE_CHECKING:
    from .transfer import Transfer

log = logging.getLogger("laden.transfer")


def verify(transfer: Transfer) -> None:
    download = transfer.download
    record = download.record
    size = record.size if transfer.plan is not None else transfer._stream_size
    actual = os.fstat(transfer.part.fd).st_size
    if size is not None and actual != size:
        raise Retryable(f"the partial file has {actual} bytes, expected {size}")
    with download.lock:
        record.size = size
    wanted = checksums_to_check(record.checksums)
    if not wanted:
        check_before_rename(transfer)  # a model file's structure (see `formats`)
        return
    transfer._set(State.VERIFYING)
    transfer.ctx.save(download)  # `laden list` in another terminal shows it: hashing takes time
    algorithms = {c["algorithm"] for c in wanted}
    digests = transfer._drop_hasher(keep=True)
    if digests is None or not algorithms <= digests.keys():
        digests = hash_file(transfer.part.path, algorithms, stop=transfer.stop_event)
    with download.lock:
        mismatch = record_digests(wanted, digests)
    transfer.ctx.save(download)
    transfer.ctx.emit(events.Verified(download.id, mismatch is None, download.info()))
    if mismatch is not None:
        raise mismatch
    check_before_rename(transfer)  # after the checksum: a mismatch may mean a changed remote


def finish_download(transfer: Transfer) -> None:
    from ..core.names import free_name

    download = transfer.download
    record = download.record
    assert record.dest is not None
    keep_piece_hashes(transfer)
    policy = transfer._conflict_policy()
    with download.lock:
        if transfer.stop_event.is_set():
            raise Cancelled(transfer.stop_reason or "stopped")
        transfer.part.close()
        while True:
            try:
                finish(transfer.part.path, record.dest, overwrite=policy == "overwrite",
                       durable=transfer.ctx.config.flush_on_finish)
                break
            except FileExistsError:
                if policy != "rename":
                    raise DestinationExists(
                        f"{record.dest} appeared during the download (conflict policy "
                        f"{policy}); the download is kept as {transfer.part.path}"
                    ) from None
                with transfer.ctx.choosing_name(transfer.download) as taken:
                    record.dest = free_name(record.dest, taken)
                record.filename = os.path.basename(record.dest)
        mark_done(transfer)  # under the same lock hold as the rename: no pause in between
    announce_done(transfer)


def keep_piece_hashes(transfer: Transfer) -> None:
    """Hash the pieces the connections could not (see `pieces`), and keep them all with the
    record, so a later `verify` names damaged ranges and `repair` fetches only those."""
    record = transfer.download.record
    if record.size is None:
        return
    recorder = transfer.pieces
    if recorder is None or recorder.size != record.size:  # a stream of unknown size
        recorder = PieceRecorder(record.size)
    try:
        hashes = recorder.complete(transfer.part.path, transfer._probe_body())
    except OSError as exc:  # the file is whole and checked: only a later repair is lost
        log.warning("download %s: no piece hashes: %s", transfer.download.id, exc)
        return
    with transfer.download.lock:
        record.pieces = hashes.to_journal()


def mark_done(transfer: Transfer) -> None:
    download = transfer.download
    record = download.record
    with download.lock:
        record.finished = time.time()
        record.message = ""
        size = record.size or 0
        record.done_ranges = [(0, size)] if size else []
        download.plan = None
        download._bytes_done_cache = size
        download.speed = 0.0
        download.connections.clear()
        transfer._set(State.DONE)


def announce_done(transfer: Transfer) -> None:
    transfer.ctx.save(transfer.download)
    transfer.ctx.emit(events.Completed(transfer.download.id, transfer.download.info()))


def renamed_before_a_crash(transfer: Transfer) -> bool:
    """True when laden stopped between the final rename and the journal's record of it.

    The partial file is gone and the final name holds this download's bytes (see
    `renamed_whole`), checked against its checksum when one is known. That file is this
    download, finished: fetching it again would leave a duplicate `name.1`.
    """
    record = transfer.download.record
    if not renamed_whole(record, transfer._probe_body()):
        return False
    wanted = checksums_to_check(record.checksums)
    if wanted:
        transfer._set(State.VERIFYING)
        digests = hash_file(record.dest, {c["algorithm"] for c in wanted},
                            stop=transfer.stop_event)
        if any(digests[c["algorithm"]] != c["expected"] for c in wanted):
            return False
        with transfer.download.lock:
            for checksum in wanted:
                checksum["actual"], checksum["verified"] = checksum["expected"], True
    return True
