"""The queue's scheduler: which downloads start next, what happens when one ends, and which
come back from the journal at start-up (held, unless interrupted downloads are to resume)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..core.states import ACTIVE, State
from ..store.journal import trusted_ranges
from . import events
from .download import Download
from .partfile import has_room_to_resume
from .transfer import Transfer

if TYPE_CHECKING:
    from .context import Engine

log = logging.getLogger("laden")

RECOUNT_EVERY = 1.0
"""Seconds between full counts of the queue when nothing asked for one."""


class Scheduler:
    """Starts the manager's waiting downloads in queue order, at most `Config.max_active` at a
    time, on the thread "laden-queue" and on the threads of the transfers that end.

    Args:
        manager: whose queue, settings and events; its transfers are given it as context.
    """

    def __init__(self, manager: Engine) -> None:
        self._manager = manager
        self._queue = manager.queue
        self._thread = threading.Thread(target=self._schedule, name="laden-queue", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _schedule(self) -> None:
        # The queue holds the downloads waiting to start, in queue order, as the last full
        # count found them (a heap), and those with a transfer. A transfer that ends only
        # frees a slot: its own thread takes the next download off the heap
        # (`next_in_this_thread`). With hundreds of small files queued, a pass over every
        # download per start made the queue quadratic (and held the manager's lock while the
        # transfers wanted it).
        queue = self._queue
        counted_at = 0.0
        with queue.lock:
            while not queue.closed:
                if queue.adding:  # adding a list: nothing starts until it is all in
                    queue.wait(RECOUNT_EVERY)
                    continue
                # Every change but a freed slot asks for a count; a busy queue counts every
                # second anyway, as a quiet one does.
                if queue.take_recount() or time.monotonic() - counted_at > RECOUNT_EVERY:
                    counted_at = time.monotonic()
                    if self._resume_where_space_returned(queue.count()):
                        continue  # count again: the resumed downloads are queued now
                while (transfer := self._claim_next()) is not None:
                    transfer.start()
                queue.wait(RECOUNT_EVERY)

    def next_in_this_thread(self) -> Transfer | None:
        """After a transfer ends, the next waiting download's transfer, to run on the same
        thread.

        Waking the queue's thread and starting a new thread made each freed slot wait for the
        GIL twice, up to 5 ms each while other transfers run Python: over 500 files of 256 KiB,
        8 at a time, a slot stood empty 6-7 ms after every 11 ms download, and only 5 of the 8
        were busy on average. None when the queue's thread must decide (it is then woken).
        """
        queue = self._queue
        with queue.lock:
            if queue.closed or queue.adding:
                return None
            if queue.recount_wanted:
                queue.notify(recount=False)
                return None
            return self._claim_next()

    def _claim_next(self) -> Transfer | None:
        """The transfer (not started) of the next waiting download, if a slot is free."""
        return self._queue.take_next(self._manager.config.max_active, self._transfer_for)

    def _transfer_for(self, download: Download) -> Transfer:
        transfer = download.transfer = Transfer(self._manager, download)
        return transfer

    def _resume_where_space_returned(self, out_of_space: list[Download]) -> bool:
        manager = self._manager
        journal_dir = manager.state_dir if manager.journal else None
        resumed = False
        for download in out_of_space:
            if has_room_to_resume(download.record, journal_dir):
                log.info("download %s: there is free space again; resuming", download.id)
                manager.resume(download.id)
                resumed = True
        return resumed

    def transfer_ended(self, transfer: Transfer) -> None:
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
            download.wake_waiters()
        if stranded:
            self._manager.save(download)
            self._manager.emit(events.Failed(download.id, download.record.message,
                                             download.info()))
        # A freed slot is taken by this thread (`next_in_this_thread`), unless this download
        # itself is queued to run again (resumed while its transfer was still stopping): then
        # the queue counts again.
        if download.state is State.QUEUED:
            self._queue.notify()


def load(manager: Engine, resume_interrupted: bool) -> None:
    """Hold the journal's unfinished downloads; those that were running when laden stopped
    are queued again, and held until someone resumes them unless `resume_interrupted`."""
    assert manager.journal is not None
    # Finished downloads stay in the journal until someone asks for one (`Queue.get`).
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
        manager.queue.keep(download)
        if stale:
            # Journalled at once: `laden list` beside this laden takes an active state in the
            # journal for one this laden is running.
            manager.save(download)
