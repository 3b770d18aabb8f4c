"""The queue's scheduler: which downloads start next, what happens when one ends, and which
come back from the journal at start-up (held, unless interrupted downloads are to resume)."""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING

from ..store.journal import trusted_ranges
from . import events
from .download import Download
from .options import DownloadOptions
from .partfile import has_room_to_resume
from .states import ACTIVE, State
from .transfer import Transfer

if TYPE_CHECKING:
    from .manager import DownloadManager

log = logging.getLogger("laden")


def schedule(manager: DownloadManager) -> None:
    with manager._wake:
        while not manager._closed:
            if manager._holding:  # adding a list: nothing starts until it is all in
                manager._wake.wait(1.0)
                continue
            journal_dir = manager.state_dir if manager.journal else None
            # One pass over every download per wake, and a wake per download that ends:
            # with hundreds of small files queued, this loop must stay cheap.
            running, waiting, out_of_space = 0, [], []
            for download in list(manager._downloads.values()):
                if download.transfer is not None:
                    running += 1
                elif download.state is State.QUEUED:
                    if not download.held:
                        waiting.append(download)
                elif download.waiting_for_space and download.state is State.PAUSED:
                    out_of_space.append(download)
            resumed = False
            for download in out_of_space:
                if has_room_to_resume(download.record, journal_dir):
                    log.info("download %s: there is free space again; resuming", download.id)
                    manager.resume(download.id)
                    resumed = True
            if resumed:
                continue  # count again: the resumed downloads are queued now
            free = max(0, manager.config.max_active - running)
            for download in heapq.nsmallest(free, waiting, key=lambda d: d.record.position):
                with download.lock:
                    download.transfer = Transfer(manager, download)
                    download.transfer.start()
            manager._wake.wait(1.0)


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
    manager._notify()


def taken_names(manager: DownloadManager, download_id: int) -> set[str]:
    with manager._lock:
        downloads = list(manager._downloads.values())  # no sorting: called for every start
    # Called once per download, over every download: the cheapest test goes first.
    return {dest for d in downloads
            if (dest := d.record.dest) and d.state is not State.DONE
            and d.record.id != download_id}


def load(manager: DownloadManager, resume_interrupted: bool) -> None:
    assert manager.journal is not None
    for record in manager.journal.load_all():
        if record.state != State.DONE.value:
            record.done_ranges = trusted_ranges(record)
        download = Download(record, DownloadOptions.from_journal(record.options))
        if download.state in ACTIVE:
            # It was running when laden stopped (quit, crash or kill -9).
            download.state = State.QUEUED
            record.state = State.QUEUED.value
            download.held = not resume_interrupted
        elif download.state is State.QUEUED:
            download.held = not resume_interrupted
        manager._keep(download)
