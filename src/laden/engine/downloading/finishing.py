"""The last steps of a download: verify the bytes, give them their final name (a rename of
the partial file, or a link of a file with no name yet), record it done.

Also the one case where those steps already happened: laden stopped between the final rename
and the journal's record of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ...core.errors import Cancelled, DestinationExists, FormatError, Retryable
from ...core.names import PART_SUFFIX, free_name
from ...core.states import State
from .. import events
from ..format_check import check_before_rename
from ..pieces import PieceRecorder
from ..unnamed import CannotLink, UnnamedFile
from ..verify import checksums_to_check, hash_file, record_digests
from .destination import conflict_policy, renamed_whole
from .preparing import name_partial_instead

if TYPE_CHECKING:
    from ...core.snapshots import DownloadInfo
    from ..seam import Run
    from .files import DownloadFiles

log = logging.getLogger("laden.transfer")


def verify(run: Run, files: DownloadFiles) -> None:
    download = run.download
    record = download.record
    size = record.size if files.plan is not None else run.stream_size
    actual = os.fstat(files.part.fd).st_size
    if size is not None and actual != size:
        raise Retryable(f"the partial file has {actual} bytes, expected {size}")
    with download.lock:
        record.size = size
    wanted = checksums_to_check(record.checksums)
    if not wanted:
        _check_format(run, files)  # a model file's structure (see `formats`)
        return
    run.set_state(State.VERIFYING)
    run.save()  # `laden list` in another terminal shows it: hashing takes time
    algorithms = {c["algorithm"] for c in wanted}
    digests = files.drop_hasher(keep=True)
    if digests is None or not algorithms <= digests.keys():
        digests = hash_file(files.part.path, algorithms, stop=run.stop_event)
    with download.lock:
        mismatch = record_digests(wanted, digests)
    run.save()
    run.emit(events.Verified(download.id, mismatch is None, download.info()))
    if mismatch is not None:
        raise mismatch
    # After the checksum: a mismatch may mean a changed remote.
    _check_format(run, files)


def _check_format(run: Run, files: DownloadFiles) -> None:
    """The model-file check; a file that fails it keeps its bytes under the partial name,
    named there now if they had no name yet (see `unnamed`)."""
    try:
        check_before_rename(run, files.part.path, files.probe_body())
    except FormatError:
        record, part = run.download.record, files.part
        if isinstance(part, UnnamedFile) and not part.named and record.dest is not None:
            identity = part.keep_as(record.dest + PART_SUFFIX)
            with run.download.lock:
                record.extra["part"] = identity
        raise


def finish_download(run: Run, files: DownloadFiles) -> None:
    download = run.download
    record = download.record
    assert record.dest is not None
    keep_piece_hashes(run, files)
    policy = conflict_policy(download, run.config)
    part = files.part
    with download.lock:
        if run.stop_event.is_set():
            raise Cancelled(run.stop_reason or "stopped")
        while True:
            try:
                part.name_as(record.dest, overwrite=policy == "overwrite",
                             durable=run.config.flush_on_finish)
                break
            except CannotLink:
                log.info("download %s: %s cannot link a file made without a name; written "
                         "into a partial file instead", download.id, os.path.dirname(record.dest))
                part = name_partial_instead(run, files)
            except FileExistsError:
                if policy == "overwrite" and isinstance(part, UnnamedFile) and not part.named:
                    # Free when the download began: replaced the way a partial file replaces.
                    part = name_partial_instead(run, files)
                    continue
                if policy != "rename":
                    raise DestinationExists(
                        f"{record.dest} appeared during the download (conflict policy "
                        f"{policy}); the download is kept as {part.path}"
                    ) from None
                with run.choosing_name() as taken:
                    record.dest = free_name(record.dest, taken)
                record.filename = os.path.basename(record.dest)
                # Journalled before the bytes take it: after a crash right after, the next
                # session finds them under the name it knows (`renamed_before_a_crash`).
                run.save()
        told = mark_done(run)  # under the same lock hold as the rename: no pause in between
    announce_done(run, told)


def keep_piece_hashes(run: Run, files: DownloadFiles) -> None:
    """Hash the pieces the connections could not (see `pieces`), and keep them all with the
    record, so a later `verify` names damaged ranges and `repair` fetches only those."""
    download = run.download
    record = download.record
    if record.size is None:
        return
    recorder = files.pieces
    if recorder is None or recorder.size != record.size:  # a stream of unknown size
        recorder = PieceRecorder(record.size)
    try:
        hashes = recorder.complete(files.part.path, files.probe_body())
    except OSError as exc:  # the file is whole and checked: only a later repair is lost
        log.warning("download %s: no piece hashes: %s", download.id, exc)
        return
    with download.lock:
        record.pieces = hashes.to_journal()


def mark_done(run: Run) -> DownloadInfo | None:
    """Record the download as done and say so; returns the snapshot told (see
    `Run.set_state`)."""
    download = run.download
    record = download.record
    with download.lock:
        record.finished = time.time()
        record.message = ""
        size = record.size or 0
        download.set_done_ranges([(0, size)] if size else [])
        download.speed = 0.0
        download.connections.clear()
        return run.set_state(State.DONE)


def announce_done(run: Run, told: DownloadInfo | None = None) -> None:
    """Journal the finished download, then tell `Completed` with `told`, the snapshot
    `mark_done` told just before (saving it changes nothing a snapshot shows)."""
    run.save()
    run.emit(events.Completed(run.download.id, told or run.download.info()))


def renamed_before_a_crash(run: Run, files: DownloadFiles) -> bool:
    """True when laden stopped between the final rename and the journal's record of it.

    The partial file is gone and the final name holds this download's bytes (see
    `renamed_whole`), checked against its checksum when one is known. That file is this
    download, finished: fetching it again would leave a duplicate `name.1`.
    """
    record = run.download.record
    if not renamed_whole(record, files.probe_body()):
        return False
    wanted = checksums_to_check(record.checksums)
    if wanted:
        run.set_state(State.VERIFYING)
        digests = hash_file(record.dest, {c["algorithm"] for c in wanted}, stop=run.stop_event)
        if any(digests[c["algorithm"]] != c["expected"] for c in wanted):
            return False
        with run.download.lock:
            for checksum in wanted:
                checksum["actual"], checksum["verified"] = checksum["expected"], True
    return True
