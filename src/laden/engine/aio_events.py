"""Events from the engine's threads to asyncio event loops: the async face's plumbing.

The engine calls its listeners on its own threads; an event loop may only be touched from its
own. `LoopBridge` is one listener that hands each event to the loops that asked for that
download with `loop.call_soon_threadsafe`, holding nothing slow meanwhile. On top of it,
`EventStream` is an async iterator of events, and `wait` awaits a download's end without a
thread blocked all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..core.snapshots import DownloadInfo
from ..core.states import State
from . import events

if TYPE_CHECKING:
    from .context import Engine

log = logging.getLogger("laden")

POLL = 0.5
"""Seconds between two looks of a `wait` that hears nothing: a safety net, since every change
worth waking for comes with an event."""
TAIL = 0.02
"""Seconds between looks once the download has ended and only its transfer's thread is left."""

Handler = Callable[[events.Event | None], None]
"""Called on its event loop with each event, and with None when the manager closes."""


class EventStream:
    """The events of one download, or of all, as an async iterator (see
    `AsyncDownloadManager.events`). Also an async context manager that closes it.

    Args:
        bridge: where the events come from.
        engine: opens the manager (or returns it), to look at the download once.
        download_id: the download, or None for all.
    """

    def __init__(self, bridge: LoopBridge, engine: Callable[[], Awaitable[Engine]],
                 download_id: int | None) -> None:
        self._bridge = bridge
        self._engine = engine
        self._download_id = download_id
        self._loop = asyncio.get_running_loop()
        self._boxes: deque[list[events.Event]] = deque()
        """Events not read yet, each in a box: a Progress box takes newer Progress events."""
        self._open_progress: dict[int, list[events.Event]] = {}
        """The box per download that a Progress event may still go into."""
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._looked = download_id is None  # whether it had ended before the stream began
        ref = weakref.ref(self)

        def handler(event: events.Event | None) -> None:
            stream = ref()
            if stream is None:  # dropped without being closed: stop feeding it
                bridge.discard(token)
            else:
                stream._put(event)

        # Weakly: a stream nobody holds any more must not be fed for ever.
        token = bridge.add(download_id, self._loop, handler)
        self._token = token

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> events.Event:
        if not self._looked:
            self._looked = True
            if not (self._ended or self._bridge.closed):
                await self._look()
        while not self._boxes:
            if self._ended:
                self._bridge.discard(self._token)
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        box = self._boxes.popleft()
        event = box[0]
        if self._open_progress.get(event.download_id) is box:
            del self._open_progress[event.download_id]
        return event

    async def _look(self) -> None:
        """End the stream at once if its download has ended already: no event would."""
        manager = await self._engine()
        info = await asyncio.to_thread(manager.get, self._download_id)  # type: ignore[arg-type]
        if info.state.is_finished:
            self._end()

    async def aclose(self) -> None:
        """Stop the stream: the iteration ends after the events already taken."""
        self._bridge.discard(self._token)
        self._end()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _put(self, event: events.Event | None) -> None:
        """On the loop: take one event from the bridge (None: the manager closed)."""
        if self._ended:
            return
        if event is None:
            self._end()
            return
        if isinstance(event, events.Progress):
            box = self._open_progress.get(event.download_id)
            if box is not None:
                box[0] = event
                return
            box = self._open_progress[event.download_id] = [event]
        else:  # a Progress after it must not be merged into one before it
            self._open_progress.pop(event.download_id, None)
            box = [event]
        self._boxes.append(box)
        if self._download_id is not None and _is_last(event):
            self._ended = True
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _is_last(event: events.Event) -> bool:
    """The last event of a download worth streaming: it is done, failed, cancelled or gone."""
    if isinstance(event, events.Completed | events.Failed | events.Removed):
        return True
    return isinstance(event, events.StateChanged) and event.new is State.CANCELLED


async def wait(
    manager: Engine,
    download_id: int,
    timeout: float | None = None,
    *,
    cancel_download: bool = False,
    bridge: LoopBridge | None = None,
) -> DownloadInfo:
    """`DownloadManager.wait` without a thread waiting all along: the event loop is woken by
    the download's events, and looks (in a worker thread) only then (see
    `AsyncDownloadManager.wait`). `bridge`: the face's listener, or None to listen here."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    wake = asyncio.Event()
    subscribed: asyncio.Future[Callable[[], None]] | None = None
    if bridge is None:  # subscribing takes the manager's lock: not on the loop
        bridge = LoopBridge()
        subscribed = loop.run_in_executor(None, manager.subscribe, bridge)
    token = bridge.add(download_id, loop, lambda _event: wake.set(), progress=False)
    try:
        if subscribed is not None:
            await asyncio.shield(subscribed)
        while True:
            wake.clear()
            info, ended = await asyncio.to_thread(_look, manager, download_id)
            left = None if deadline is None else deadline - loop.time()
            if ended or bridge.closed or (left is not None and left <= 0):
                return info
            pause = TAIL if info.state.is_settled else POLL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), pause if left is None else min(pause, left))
    except asyncio.CancelledError:
        if cancel_download:
            try:
                await asyncio.shield(asyncio.to_thread(manager.cancel, download_id))
            except Exception:
                log.exception("could not cancel download %s", download_id)
        raise
    finally:
        bridge.discard(token)
        if subscribed is not None:
            subscribed.add_done_callback(_unsubscribe)


def _unsubscribe(subscribed: asyncio.Future[Callable[[], None]]) -> None:
    """Once subscribed (by a wait that may have been cancelled meanwhile), unsubscribe, in a
    worker thread."""
    if subscribed.cancelled() or subscribed.exception() is not None:
        return
    with contextlib.suppress(RuntimeError):  # the loop is shutting down its executor
        subscribed.get_loop().run_in_executor(None, subscribed.result())


def _look(manager: Engine, download_id: int) -> tuple[DownloadInfo, bool]:
    """In a worker thread: the download's snapshot, and whether `wait` is over."""
    download = manager.queue.get(download_id)
    return download.info(), download.settled()


class LoopBridge:
    """One listener on the engine: each event goes to the event loops that asked for its
    download, through `call_soon_threadsafe`. Called on engine threads, so it only copies a
    list under a lock that nothing slow holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._handlers: dict[int, tuple[int | None, asyncio.AbstractEventLoop, Handler, bool]] = {}
        self._by_download: dict[int | None, set[int]] = {}
        self.closed = False

    def add(self, download_id: int | None, loop: asyncio.AbstractEventLoop, handler: Handler,
            *, progress: bool = True) -> int:
        """Call `handler(event)` on `loop` for the events of `download_id` (None: all);
        `progress=False` leaves out Progress events. Returns the token for `discard`."""
        with self._lock:
            token = next(self._tokens)
            self._handlers[token] = (download_id, loop, handler, progress)
            self._by_download.setdefault(download_id, set()).add(token)
        if self.closed:
            loop.call_soon(handler, None)
        return token

    def discard(self, token: int) -> None:
        with self._lock:
            entry = self._handlers.pop(token, None)
            if entry is not None:
                tokens = self._by_download[entry[0]]
                tokens.discard(token)
                if not tokens:
                    del self._by_download[entry[0]]

    def end_all(self) -> None:
        """Tell every handler the manager is closing (with None)."""
        with self._lock:
            self.closed = True
            entries = list(self._handlers.values())
        for _download_id, loop, handler, _progress in entries:
            _post(loop, handler, None)

    def __call__(self, event: events.Event) -> None:
        with self._lock:
            tokens = [*self._by_download.get(event.download_id, ()),
                      *self._by_download.get(None, ())]
            entries = [self._handlers[token] for token in tokens]
        if isinstance(event, events.Progress):
            entries = [entry for entry in entries if entry[3]]
            if entries:
                # Its snapshot is made here, on the engine's thread, under the download's
                # lock: an event loop never waits for that lock.
                _ = event.info
        for _download_id, loop, handler, _progress in entries:
            _post(loop, handler, event)


def _post(loop: asyncio.AbstractEventLoop, handler: Handler, event: events.Event | None) -> None:
    with contextlib.suppress(RuntimeError):  # its loop is closed; its wait or stream went too
        loop.call_soon_threadsafe(handler, event)


__all__ = ["EventStream", "LoopBridge", "wait"]
