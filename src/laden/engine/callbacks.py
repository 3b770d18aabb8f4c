"""Callbacks given to one `add` (`on_progress`, `on_done`), called on a thread of their own.

The manager's listeners run on engine threads (a transfer's monitor, a connection, the queue),
where a slow callback would slow the download. So `add(..., on_progress=fn, on_done=fn)` does
not subscribe `fn`: the dispatcher's listener only keeps each download's newest snapshot, and
the dispatcher's thread, "laden-callbacks", calls the callbacks from there:

- `on_progress(info)` at most once per `interval` (a quarter of a second) per download, with the
  newest snapshot; snapshots in between are skipped, never queued up.
- `on_done(info)` once, when the download is done, failed or cancelled (`info.state` says which),
  at once if it already was when the callbacks were given; a removed download drops its
  callbacks without a call.

A callback that raises is logged and the others go on. The asyncio face passes a `run` that
hands each call to its event loop instead (see `aio`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.snapshots import DownloadInfo
from ..core.states import State
from . import events

if TYPE_CHECKING:
    from .context import Engine

log = logging.getLogger("laden")

INTERVAL = 0.25
"""Seconds between two `on_progress` calls of one download, at least."""

InfoCallback = Callable[[DownloadInfo], Any]
Runner = Callable[[InfoCallback, DownloadInfo, str], None]
"""Calls a callback: `run(callback, info, what)`, where `what` names it for the log."""


def call_logged(callback: InfoCallback, info: DownloadInfo, what: str) -> None:
    """Call `callback(info)` here; an exception is logged, never raised."""
    try:
        callback(info)
    except Exception:  # someone else's code: it must not stop the dispatcher
        log.exception("%s of download %s failed", what, info.id)


@dataclass(eq=False)
class _Watch:
    """The callbacks of one `add` call, and what is waiting to be told to them."""

    on_progress: InfoCallback | None
    on_done: InfoCallback | None
    run: Runner
    latest: DownloadInfo | None = None
    """A snapshot `on_progress` has not been given yet."""
    newest: int = 0
    """The sequence of the newest snapshot taken (see `DownloadInfo.sequence`)."""
    done: DownloadInfo | None = None
    """The final snapshot, once the download has ended."""
    last_call: float = field(default=-INTERVAL)


def _final(event: events.Event) -> bool:
    if isinstance(event, events.Completed | events.Failed):
        return True
    return isinstance(event, events.StateChanged) and event.new is State.CANCELLED


class CallbackDispatcher:
    """Calls the callbacks of `add` calls on its own thread, rate-limited per download.

    Every manager has one; it listens and starts its thread with the first callback given,
    and stops with `close`.

    Args:
        manager: the manager whose events it listens to.
        interval: seconds between two `on_progress` calls of one download, at least.
    """

    def __init__(self, manager: Engine, interval: float = INTERVAL) -> None:
        self._manager = manager
        self._interval = interval
        self._wake = threading.Condition(threading.Lock())
        self._watches: dict[int, list[_Watch]] = {}
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        """Listen, and start the thread, unless that was done already. The caller holds
        `_wake`."""
        if self._thread is not None:
            return
        self._unsubscribe = self._manager.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name="laden-callbacks", daemon=True)
        self._thread.start()

    def watch(
        self,
        download_id: int,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        run: Runner = call_logged,
    ) -> None:
        """Call these callbacks for `download_id` from now on (see the module docstring).

        `run` calls each of them; by default on the dispatcher's thread.
        """
        if on_progress is None and on_done is None:
            return
        watch = _Watch(on_progress, on_done, run)
        with self._wake:
            self._start()
            self._watches.setdefault(download_id, []).append(watch)
        # It may have ended before it was watched (a small file, or one downloaded earlier):
        # then no event will come. Looked at after `watch` is in place, so none is missed.
        info = self._manager.get(download_id)
        if info.state.is_finished:
            with self._wake:
                watch.done = watch.done or info
                self._wake.notify()

    def close(self) -> None:
        """Stop listening, give what is waiting to the callbacks, and end the thread."""
        with self._wake:
            unsubscribe, thread = self._unsubscribe, self._thread
        if unsubscribe is not None:
            unsubscribe()
        with self._wake:
            self._closed = True
            self._wake.notify()
        if thread is not None and threading.current_thread() is not thread:
            thread.join(5)  # not when close() is called from a callback

    # -- on engine threads: as little as possible -------------------------------------------

    def _on_event(self, event: events.Event) -> None:
        with self._wake:
            watches = self._watches.get(event.download_id)
            if not watches:
                return
            if isinstance(event, events.Removed):
                del self._watches[event.download_id]
                return
            final = _final(event)
            if not final and all(watch.on_progress is None for watch in watches):
                return
        # Outside the lock: a progress event's snapshot is made now, under the download's.
        info: DownloadInfo | None = getattr(event, "info", None)
        if info is None:
            return
        with self._wake:
            for watch in self._watches.get(event.download_id, ()):
                if final:
                    watch.done = watch.done or info
                elif watch.on_progress is not None and info.sequence >= watch.newest:
                    # Not when a newer one came first, from another thread.
                    watch.latest, watch.newest = info, info.sequence
            self._wake.notify()

    # -- the dispatcher's thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                calls, wait = self._due(time.monotonic())
                if not calls:
                    if self._closed:
                        return
                    self._wake.wait(wait)
                    continue
            for run, callback, info, what in calls:
                try:
                    run(callback, info, what)
                except Exception:  # a runner that fails (a closed event loop) drops the call
                    log.exception("could not call %s of download %s", what, info.id)

    def _due(self, now: float) -> tuple[list[tuple[Runner, InfoCallback, DownloadInfo, str]],
                                        float | None]:
        """The calls to make now, and how long to wait when there are none (None: until woken).
        The caller holds the lock."""
        calls: list[tuple[Runner, InfoCallback, DownloadInfo, str]] = []
        wait: float | None = None
        for download_id, watches in list(self._watches.items()):
            for watch in list(watches):
                if watch.done is not None:
                    watches.remove(watch)
                    if watch.on_done is not None:
                        calls.append((watch.run, watch.on_done, watch.done, "on_done"))
                    continue
                if watch.latest is None or watch.on_progress is None:
                    continue
                due = watch.last_call + self._interval
                if due <= now or self._closed:
                    calls.append((watch.run, watch.on_progress, watch.latest, "on_progress"))
                    watch.latest, watch.last_call = None, now
                else:
                    wait = due - now if wait is None else min(wait, due - now)
            if not watches:
                del self._watches[download_id]
        return calls, wait
