"""Pausing, resuming, cancelling and removing downloads at your request."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from ..core.states import ACTIVE, State
from . import events
from .partfile import remove_partial

if TYPE_CHECKING:
    from .context import Engine
    from .download import Download

log = logging.getLogger("laden")


def pause(manager: Engine, download_id: int) -> bool:
    """Pause a queued or running download; False when it is not paused (done, failed, paused
    already, or finishing)."""
    download = manager.queue.get(download_id)
    with download.lock:
        download.waiting_for_space = False  # paused by you now: stays paused
        if download.state.is_settled:
            return False
        if download.transfer is not None and _all_bytes_written(download):
            # Only checking and renaming are left, all on this disk: a pause now would leave a
            # complete `name.laden-part` waiting for a resume that has nothing to fetch.
            log.info("download %s: every byte is written; finishing it instead of pausing",
                     download.id)
            return False
        if download.transfer is not None:
            download.transfer.stop("pause")
        old = download.set_state(State.PAUSED, "paused")
        download.speed = 0.0
    _announce(manager, download, old, State.PAUSED, events.Paused)
    return True


def _all_bytes_written(download: Download) -> bool:
    """True once the transfer has every byte of the file (its probe is behind it)."""
    if download.state is State.VERIFYING:
        return True
    size = download.record.size
    return download.state.is_moving and size is not None and (
        download.done_bytes() >= size)


def resume(manager: Engine, download_id: int) -> None:
    download = manager.queue.get(download_id)
    with download.lock:
        download.held = False
        download.waiting_for_space = False
        before = download.state
        if before is not State.DONE and before not in _QUEUED_OR_RUNNING:
            download.set_state(State.QUEUED, "")
    if before in _QUEUED_OR_RUNNING:
        # Only woken, and after the download's lock is let go: the scheduler takes the queue's
        # lock first and a download's second (see `queue`).
        manager.queue.notify()
    elif before is not State.DONE:
        _announce(manager, download, before, State.QUEUED, events.Resumed)


_QUEUED_OR_RUNNING = frozenset({State.QUEUED, *ACTIVE})


def _announce(manager: Engine, download: Download, old: State, new: State,
              event: type[events.Paused | events.Resumed]) -> None:
    """Save a state you changed, tell the listeners, and let the queue count again."""
    manager.save(download)
    info = download.info()
    manager.emit(events.StateChanged(download.id, old, new, info))
    manager.emit(event(download.id, info))
    manager.queue.notify()


def cancel(manager: Engine, download_id: int) -> None:
    download = manager.queue.get(download_id)
    with download.lock:
        if download.state in (State.DONE, State.CANCELLED):
            return
        transfer = download.transfer
        if transfer is not None:
            transfer.stop("cancel")
        old = download.set_state(State.CANCELLED, "cancelled")
    if transfer is not None:
        transfer.join(30)
    delete_partial(download, manager)
    download.set_done_ranges([])
    manager.save(download)
    manager.emit(events.StateChanged(download_id, old, State.CANCELLED, download.info()))
    manager.queue.notify()


def remove(manager: Engine, download_id: int, delete_file: bool = False) -> None:
    download = manager.queue.get(download_id)
    with download.lock:
        transfer = download.transfer
        if transfer is not None:
            transfer.stop("remove")
    if transfer is not None:
        transfer.join(30)
    delete_partial(download, manager)
    dest = download.record.dest
    completed = download.record.finished is not None
    # An upload's `dest` is the local file it sent: never laden's to delete.
    uploaded = download.record.direction == "upload"
    if delete_file and dest and completed and not uploaded and os.path.isfile(dest):
        os.unlink(dest)
    manager.queue.forget(download_id)
    if manager.journal is not None:
        manager.journal.delete(download_id)
    manager.emit(events.Removed(download_id))
    manager.queue.notify()


def delete_partial(download: Download, manager: Engine) -> None:
    """What a cancelled or removed transfer leaves: a download's partial file, an upload's
    unfinished upload at the service (aborted, so its parts stop costing storage)."""
    if download.record.direction == "upload":
        from .uploading.direction import abandon  # here: a download's start-up needs none of it

        abandon(manager.sources, download)
        return
    try:
        remove_partial(download.record)
    except OSError as exc:
        log.warning("could not delete the partial file of %s: %s", download.record.dest, exc)
