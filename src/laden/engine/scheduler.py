"""The queue's scheduler: which downloads start next, what happens when one ends, and which
come back from the journal at start-up (held, unless interrupted downloads are to resume)."""

from __future__ import annotations

import heapq
import logging
import time
from typing import TYPE_CHECKING

from ..core.states import ACTIVE, State
from ..store.journal import trusted_ranges
from . import events
from .download import Download
from .partfile import has_room_to_resume
from .transfer import Transfer

if TYPE_CHECKING:
    from .manager import DownloadManager

log = logging.getLogger("laden")

RECOUNT_EVERY = 1.0
"""Seconds between full counts of the queue when nothing asked for one."""


def schedule(manager: DownloadManager) -> None:
    # `manager._waiting` holds the downloads waiting to start, in queue order, as the last full
    # count found them (a heap), and `manager._running` those with a transfer. A transfer that
    # ends only frees a slot: its own thread takes the next download off the heap
    # (`next_in_this_thread`). With hundreds of small files queued, a pass over every download
    # per start made the queue quadratic (and held the manager's lock while the transfers
    # wanted it).
    counted_at = 0.0
    with manager._wake:
        while not manager._closed:
            if manager._holding:  # adding a list: nothing starts until it is all in
                manager._wake.wait(RECOUNT_EVERY)
                continue
            # Every change but a freed slot asks for a count; a busy queue counts every second
            # anyway, as a quiet one does.
            if manager._recount or time.monotonic() - counted_at > RECOUNT_EVERY:
                manager._recount, counted_at = False, time.monotonic()
                manager._running, manager._waiting, out_of_space = _count(manager)
                if _resume_where_space_returned(manager, out_of_space):
                    continue  # count again: the resumed downloads are queued now
            while (transfer := _claim_next(manager)) is not None:
                transfer.start()
            manager._wake.wait(RECOUNT_EVERY)


def next_in_this_thread(manager: DownloadManager) -> Transfer | None:
    """After a transfer ends, the next waiting download's transfer, to run on the same thread.

    Waking the queue's thread and starting a new thread made each freed slot wait for the GIL
    twice, up to 5 ms each while other transfers run Python: over 500 files of 256 KiB, 8 at a
    time, a slot stood empty 6-7 ms after every 11 ms download, and only 5 of the 8 were busy
    on average. None when the queue's thread must decide (it is then woken).
    """
    with manager._wake:
        if manager._closed or manager._holding:
            return None
        if manager._recount:
            manager._wake.notify_all()
            return None
        return _claim_next(manager)


def _claim_next(manager: DownloadManager) -> Transfer | None:
    """The transfer (not started) of the next waiting download, if a slot is free. The caller
    holds `manager._wake`."""
    manager._running = [d for d in manager._running if d.transfer is not None]
    if len(manager._running) >= manager.config.max_active:
        return None
    while manager._waiting:
        download = heapq.heappop(manager._waiting)[2]
        if not _ready(manager, download):
            continue  # changed since the count; a change that queues it counts again
        with download.lock:
            transfer = download.transfer = Transfer(manager, download)
        manager._running.append(download)
        return transfer
    return None


def _count(manager: DownloadManager
           ) -> tuple[list[Download], list[tuple[float, int, Download]], list[Download]]:
    """One pass over every download: running, waiting (a heap), paused for want of space."""
    running, waiting, out_of_space = [], [], []
    for download in list(manager._downloads.values()):
        if download.transfer is not None:
            running.append(download)
        elif download.state is State.QUEUED:
            if not download.held:
                waiting.append((download.record.position, download.id, download))
        elif download.waiting_for_space and download.state is State.PAUSED:
            out_of_space.append(download)
    heapq.heapify(waiting)
    return running, waiting, out_of_space


def _ready(manager: DownloadManager, download: Download) -> bool:
    return (download.transfer is None and download.state is State.QUEUED and not download.held
            and manager._downloads.get(download.id) is download)


def _resume_where_space_returned(manager: DownloadManager, out_of_space: list[Download]
                                 ) -> bool:
    journal_dir = manager.state_dir if manager.journal else None
    resumed = False
    for download in out_of_space:
        if has_room_to_resume(download.record, journal_dir):
            log.info("download %s: there is free space again; resuming", download.id)
            manager.resume(download.id)
            resumed = True
    return resumed


def transfer_ended(manager: DownloadManager, transfer: Transfer) -> None:
    download = transfer.download
    stranded = False
    with download.lock:
        if download.transfer is transfer:
            download.transfer = None
        download.connections.clear()
        if download.state in ACTIVE and transfer.stop_reason is None:
            # Every way out of a transfer sets a final state; this is a bug, so say so
            # rather than leave the download looking busy forever.
            download.add_error("internal error: the transfer ended without a result")
            download.set_state(State.FAILED)
            stranded = True
        download.finished_event.set()
    if stranded:
        manager.save(download)
        manager.emit(events.Failed(download.id, download.record.message, download.info()))
    # A freed slot is taken by this thread (`next_in_this_thread`), unless this download itself
    # is queued to run again (resumed while its transfer was still stopping): then the queue
    # counts again.
    if download.state is State.QUEUED:
        manager._notify()


def load(manager: DownloadManager, resume_interrupted: bool) -> None:
    assert manager.journal is not None
    # Finished downloads stay in the journal until someone asks for one (`_finished_earlier`).
    manager._last_position = manager.journal.last_position()
    for record in manager.journal.load_unfinished():
        record.done_ranges = trusted_ranges(record)
        download = Download.from_journal(record)
        stale = download.state in ACTIVE
        if stale:
            # It was running when laden stopped (quit, crash or kill -9).
            download.state = State.QUEUED
            record.state = State.QUEUED.value
            download.held = not resume_interrupted
        elif download.state is State.QUEUED:
            download.held = not resume_interrupted
        manager._keep(download)
        if stale:
            # Journalled at once: `laden list` beside this laden takes an active state in the
            # journal for one this laden is running.
            manager.save(download)
