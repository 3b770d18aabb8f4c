"""`AsyncDownloadManager`: the engine for asyncio code, never blocking its event loop.

    import asyncio
    from laden import AsyncDownloadManager

    async def main() -> None:
        async with AsyncDownloadManager() as manager:
            ids = [await manager.add(url, "downloads/") for url in urls]
            for info in await asyncio.gather(*(manager.wait(i) for i in ids)):
                print(info.state, info.dest)

It is the same engine as `DownloadManager`, held as `.manager`, the way httpx pairs `AsyncClient`
with `Client`: the same methods, the same arguments, awaited. Whatever may touch the journal or
the disk runs in a worker thread (`asyncio.to_thread`); events cross from the engine's threads
with `loop.call_soon_threadsafe`, so the loop never waits on a lock, a disk or a download. No
method holds on to an event loop: one manager serves whichever loop awaits it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from ..core.config import Config
from ..core.options import DownloadOptions
from ..core.snapshots import DownloadInfo
from .aio_events import EventStream, LoopBridge, wait
from .callbacks import InfoCallback, Runner
from .checking import VerifyResult
from .manager import DownloadManager

log = logging.getLogger("laden")

CLOSE_CALLBACKS = 5.0
"""Seconds `aclose` gives coroutine callbacks still running before cancelling them."""


class AsyncDownloadManager:
    """The download manager for asyncio: `DownloadManager`'s methods, awaited.

    Open it with `async with AsyncDownloadManager() as manager:` (or `await manager.open()`,
    and `await manager.aclose()` at the end); the first call opens it too. Opening and closing
    run in a worker thread, as the journal is read and written then.

    Args:
        config: engine settings; the defaults when None (the settings file is not read: use
            `from_settings` for that).
        state_dir: journal folder; LADEN_STATE_DIR or the platform's state folder when None.
        persist: keep a journal (and hold the state folder's lock); False for throwaway use.
        resume_interrupted: start downloads that were running when laden last stopped.
        manager: a running `DownloadManager` to share instead of starting one (the same
            downloads, seen from sync and async code); `aclose` leaves it open.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        state_dir: str | None = None,
        persist: bool = True,
        resume_interrupted: bool = False,
        manager: DownloadManager | None = None,
    ) -> None:
        self._factory: Callable[[], DownloadManager] = (
            (lambda: manager) if manager is not None else
            (lambda: DownloadManager(config, state_dir=state_dir, persist=persist,
                                     resume_interrupted=resume_interrupted)))
        self._owned = manager is None
        self._manager: DownloadManager | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._opening = threading.Lock()
        self._closed = False
        self._bridge = LoopBridge()
        self._tasks: set[asyncio.Task[Any]] = set()
        """Coroutine callbacks still running (kept: the loop holds tasks only weakly)."""
        self._busy: set[tuple[int, int]] = set()
        """(download id, callback id) of `on_progress` coroutines not finished yet."""

    @classmethod
    def from_settings(cls, path: str | None = None, **kwargs: Any) -> AsyncDownloadManager:
        """A manager with the values of the settings file, read when it opens (see
        `DownloadManager.from_settings`); `kwargs` go to `DownloadManager`."""
        face = cls()
        face._factory = lambda: DownloadManager.from_settings(path, **kwargs)
        return face

    # -- opening and closing -----------------------------------------------------------------

    async def open(self) -> AsyncDownloadManager:
        """Start the engine (or take the one given) in a worker thread; returns the manager.

        Raises:
            StateDirBusy: another laden holds the state folder.
            SettingsError: the settings file of `from_settings` is wrong.
        """
        await self._engine()
        return self

    async def aclose(self) -> None:
        """Stop every transfer, keeping its state so the next start resumes it (as
        `DownloadManager.close`); event streams end and waits return. Calling it again does
        nothing."""
        if self._closed:
            return
        self._closed = True
        self._bridge.end_all()
        await asyncio.to_thread(self._stop)
        await asyncio.sleep(0)  # callbacks handed over by the closing dispatcher start now
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=CLOSE_CALLBACKS)
            for task in pending:
                task.cancel()

    async def __aenter__(self) -> AsyncDownloadManager:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def manager(self) -> DownloadManager:
        """The engine underneath, for what this class has no method for. Its methods block:
        call them with `await asyncio.to_thread(manager.manager.move, download_id, -1)`.

        Raises:
            RuntimeError: the manager is not open yet, or closed.
        """
        if self._manager is None or self._closed:
            raise RuntimeError("the AsyncDownloadManager is not open (or closed): use "
                               "`async with` or `await manager.open()` first")
        return self._manager

    async def _engine(self) -> DownloadManager:
        if self._closed:
            raise RuntimeError("the AsyncDownloadManager is closed")
        manager = self._manager
        if manager is None:
            manager = await asyncio.to_thread(self._start)
        return manager

    def _start(self) -> DownloadManager:
        with self._opening:  # two first calls at once start one engine
            if self._closed:
                raise RuntimeError("the AsyncDownloadManager is closed")
            if self._manager is None:
                manager = self._factory()
                self._unsubscribe = manager.subscribe(self._bridge)
                self._manager = manager
            return self._manager

    def _stop(self) -> None:
        with self._opening:  # an engine still starting is closed once it has started
            if self._manager is None:
                return
            if self._owned:
                self._manager.close()
            elif self._unsubscribe is not None:
                self._unsubscribe()

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`method(manager, *args)` of `DownloadManager`, in a worker thread."""
        manager = await self._engine()
        return await asyncio.to_thread(method, manager, *args, **kwargs)

    # -- adding ------------------------------------------------------------------------------

    async def add(
        self,
        url: str,
        dest: str | None = None,
        *,
        options: DownloadOptions | None = None,
        group: str | None = None,
        start: bool = True,
        again: bool = False,
        rehash: bool = False,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        **option_fields: Any,
    ) -> int:
        """Queue one download and return its id (see `DownloadManager.add`).

        `on_progress(info)` and `on_done(info)` run on the event loop this was awaited on;
        either may be a coroutine function (its coroutine becomes a task). `on_progress` runs
        at most four times a second, with the newest snapshot, and a coroutine still running
        makes the next call wait for the one after; `on_done` runs once, when the download is
        done, failed or cancelled. An exception in either is logged and changes nothing else.
        """
        loop = asyncio.get_running_loop()

        def adding(manager: DownloadManager) -> int:
            download_id = manager.add(url, dest, options=options, group=group, start=start,
                                      again=again, rehash=rehash, **option_fields)
            self._watch(manager, loop, [download_id], on_progress, on_done)
            return download_id

        result: int = await self._call(adding)
        return result

    async def add_all(
        self,
        url: str,
        dest: str | None = None,
        *,
        options: DownloadOptions | None = None,
        group: str | None = None,
        start: bool = True,
        again: bool = False,
        rehash: bool = False,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        **option_fields: Any,
    ) -> list[int]:
        """Like `add`, but a folder or prefix address becomes one download per file in it;
        the callbacks run for each of them."""
        loop = asyncio.get_running_loop()

        def adding(manager: DownloadManager) -> list[int]:
            download_ids = manager.add_all(url, dest, options=options, group=group,
                                           start=start, again=again, rehash=rehash,
                                           **option_fields)
            self._watch(manager, loop, download_ids, on_progress, on_done)
            return download_ids

        result: list[int] = await self._call(adding)
        return result

    # -- controlling -------------------------------------------------------------------------

    async def pause(self, download_id: int) -> bool:
        """Pause a queued or running download (see `DownloadManager.pause`)."""
        result: bool = await self._call(DownloadManager.pause, download_id)
        return result

    async def resume(self, download_id: int) -> None:
        """Queue a paused, failed or cancelled download again (see `DownloadManager.resume`)."""
        await self._call(DownloadManager.resume, download_id)

    async def cancel(self, download_id: int) -> None:
        """Stop for good and delete the partial file; the entry stays in the list."""
        await self._call(DownloadManager.cancel, download_id)

    async def remove(self, download_id: int, delete_file: bool = False) -> None:
        """Forget a download; its partial file goes too, the finished file only if asked."""
        await self._call(DownloadManager.remove, download_id, delete_file)

    async def verify(
        self, download_id: int, algorithm: str | None = None, expected: str | None = None,
        *, record: bool | None = None,
    ) -> VerifyResult:
        """Check a finished file again (see `DownloadManager.verify`). The file is hashed in a
        worker thread; cancelling this await does not stop that hashing."""
        result: VerifyResult = await self._call(DownloadManager.verify, download_id, algorithm,
                                                expected, record=record)
        return result

    # -- reading -----------------------------------------------------------------------------

    async def get(self, download_id: int) -> DownloadInfo:
        """A snapshot of the download (see `DownloadManager.get`)."""
        result: DownloadInfo = await self._call(DownloadManager.get, download_id)
        return result

    async def list(self, *, done: bool = True) -> list[DownloadInfo]:
        """Every download in queue order (see `DownloadManager.list`)."""
        result: list[DownloadInfo] = await self._call(DownloadManager.list, done=done)
        return result

    async def wait(
        self, download_id: int, timeout: float | None = None, *, cancel_download: bool = False,
    ) -> DownloadInfo:
        """Until the download is done, failed, cancelled or paused; returns its snapshot.

        Returns after `timeout` seconds too, with the download as it is then, and when the
        manager closes. Cancelling the await leaves the download running, unless
        `cancel_download`: then the download is cancelled (its partial file deleted) before
        the cancellation goes on.
        """
        manager = await self._engine()
        return await wait(manager, download_id, timeout, cancel_download=cancel_download,
                          bridge=self._bridge)

    def events(self, download_id: int | None = None) -> EventStream:
        """The events of one download (or of all, with None) from now on, in order, as an
        async iterator: `async for event in manager.events(download_id): ...`.

        One download's stream ends after it is done, failed, cancelled or removed (at once if
        it already was); every stream ends when the manager closes, or with `aclose()` on it.
        Progress events a slow reader has not taken yet are merged into the newest one, so
        a stream never piles up. Call it in the event loop that reads it.
        """
        return EventStream(self._bridge, self._engine, download_id)

    # -- callbacks ---------------------------------------------------------------------------

    def _watch(
        self, manager: DownloadManager, loop: asyncio.AbstractEventLoop,
        download_ids: Sequence[int],
        on_progress: InfoCallback | None, on_done: InfoCallback | None,
    ) -> None:
        """Have the manager's dispatcher hand these callbacks to `loop` (a worker thread)."""
        if on_progress is None and on_done is None:
            return
        run = self._runner(loop)
        for download_id in download_ids:
            manager.callbacks.watch(download_id, on_progress, on_done, run=run)

    def _runner(self, loop: asyncio.AbstractEventLoop) -> Runner:
        def run(callback: InfoCallback, info: DownloadInfo, what: str) -> None:
            try:
                loop.call_soon_threadsafe(self._run_callback, callback, info, what)
            except RuntimeError:  # that event loop is closed: nobody is listening any more
                log.debug("%s of download %s dropped: its event loop is closed", what, info.id)

        return run

    def _run_callback(self, callback: InfoCallback, info: DownloadInfo, what: str) -> None:
        """On the event loop: call it, and run what it returns as a task when awaitable."""
        key = (info.id, id(callback))
        if what == "on_progress" and key in self._busy:
            return  # the previous call still runs; a newer snapshot comes soon
        try:
            result = callback(info)
        except Exception:
            log.exception("%s of download %s failed", what, info.id)
            return
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        if what == "on_progress":
            self._busy.add(key)

        def ended(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            self._busy.discard(key)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s of download %s failed", what, info.id,
                          exc_info=task.exception())

        task.add_done_callback(ended)


__all__ = ["AsyncDownloadManager", "EventStream"]
