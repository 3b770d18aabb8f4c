"""One running transfer: its attempts, the monitor, retries, restarts, state changes, endings.

A coordinator runs on its own thread while its connections run on the manager's pool. It owns
the transfer's state and is the same for either direction: what depends on the direction (ask
the far end, make the partial file, check and rename at the end, the two ends of the byte loop)
is the `seam.Direction` it is handed, which sees the coordinator only as the seam's `Run`.
It never stitches two versions of a file: if the remote changed, it goes back to zero and says
why (or gives up after `MAX_RESTARTS`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Container
from concurrent.futures import Future, wait
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ..core.config import Config
from ..core.errors import (
    Cancelled,
    ChecksumMismatch,
    DiskError,
    LadenError,
    LocalFileChanged,
    RangeNotSupported,
    RemoteChanged,
    RemoteError,
    TransferError,
    is_permanent,
)
from ..core.retry import RetryPolicy
from ..core.states import State
from . import events
from .connection import run_connection, run_single_stream
from .context import EngineContext
from .download import Connection, Download
from .health import Health
from .ratelimit import Limits, TokenBucket
from .seam import Change, Direction, Skip

if TYPE_CHECKING:
    from ..core.snapshots import DownloadInfo
    from ..sources.registry import SourceRegistry
    from ..store.journal import Journal
    from .hosts import HostLimiter

log = logging.getLogger("laden.transfer")
TICK = 0.25
MAX_RESTARTS = 3
CHANGES = (RemoteChanged, LocalFileChanged, RangeNotSupported, ChecksumMismatch)
"""Errors that may mean the bytes moved so far are of another version (see `_after_change`):
an upload's local file changing is one, so its direction decides to stop or start again."""


class Coordinator:
    """Runs one transfer in `direction`; implements the seam's `Run` for its steps."""

    def __init__(self, ctx: EngineContext, download: Download, direction: Direction) -> None:
        self.ctx = ctx
        self.download = download
        self.direction = direction
        self.stop_event = threading.Event()
        self._failure: BaseException | None = None
        self.own_limit = TokenBucket(download.options.limit_rate)
        self.limits = Limits(self.own_limit, ctx.bandwidth)
        self.health = Health(ctx.config.lowest_speed, ctx.config.stall_timeout)
        self.streamed = 0
        self._stop_reason: str | None = None
        self._stream_size: int | None = None
        self._lock = threading.Lock()
        self._restarts = 0
        self._ended = threading.Event()
        self._runner: threading.Thread | None = None

    # -- called by the manager ---------------------------------------------------------------

    def start(self) -> None:
        """Run on a new thread, which goes on with the next queued download when this one
        ends (see `scheduler.next_in_this_thread`)."""
        threading.Thread(target=self._work, name=self._thread_name(), daemon=True).start()

    def stop(self, reason: str) -> None:
        """reason: "pause", "cancel", "remove" or "shutdown" (state kept, resumed next
        session)."""
        self._stop_reason = self._stop_reason or reason
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._runner is not threading.current_thread():
            self._ended.wait(timeout)

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    # -- the seam's Run: what steps and connections may ask ----------------------------------

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def journal(self) -> Journal | None:
        return self.ctx.journal

    @property
    def sources(self) -> SourceRegistry:
        return self.ctx.sources

    @property
    def hosts(self) -> HostLimiter:
        return self.ctx.hosts

    @property
    def stream_size(self) -> int | None:
        return self._stream_size

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
        self.stop_event.set()

    def retry_policy(self) -> RetryPolicy:
        """The download's own policy, else the manager's: read at each error, so settings
        saved in the app apply to the downloads running."""
        return self.download.options.retry or self.ctx.config.retry_policy

    def backoff(self, attempt: int, exc: BaseException) -> bool:
        """Wait before retry `attempt`; False when retries are used up or the transfer stops."""
        policy = self.retry_policy()
        if policy.exhausted(attempt, exc):
            return False
        download = self.download
        retry_after = exc.retry_after if isinstance(exc, RemoteError) else None
        wait = policy.delay(attempt, retry_after)
        asked = " (the server asked for it)" if retry_after is not None else ""
        # Every retry is said, however short its wait: silent ones made a refused connection
        # look like a hang.
        seconds = f"{wait:.0f}" if wait >= 10 or wait == int(wait) else f"{wait:.1f}"
        message = (f"{exc}; retry {attempt} of {policy.allowed(exc)}, trying again in "
                   f"{seconds} s{asked}")
        with download.lock:
            download.record.retries += 1
            download.retry_at = time.time() + wait
            download.record.message = message
        log.info("download %s: %s (attempt %s)", download.id, message, attempt)
        self.ctx.emit(events.Retrying(download.id, str(exc), wait, attempt, download.info()))
        self.stop_event.wait(wait)
        with download.lock:
            download.retry_at = None
        return not self.stop_event.is_set()

    def connection(self, number: int) -> Connection:
        with self.download.lock:
            return self.download.connections.setdefault(number, Connection(number))

    def drop_connection(self, number: int) -> None:
        with self.download.lock:
            self.download.connections.pop(number, None)

    def other_connections(self, number: int) -> int:
        with self.download.lock:
            return sum(1 for n in self.download.connections if n != number)

    def finish_stream(self, size: int) -> None:
        self._stream_size = size

    def save(self) -> None:
        self.ctx.save(self.download)

    def emit(self, event: events.Event) -> None:
        self.ctx.emit(event)

    def choosing_name(self) -> AbstractContextManager[Container[str]]:
        return self.ctx.choosing_name(self.download)

    def set_state(self, state: State) -> DownloadInfo | None:
        download = self.download
        with download.lock:
            if self.stop_event.is_set() and self._stop_reason:
                raise Cancelled(self._stop_reason)
            old = download.set_state(state)
        if old is state:
            return None
        info = download.info()
        self.ctx.emit(events.StateChanged(download.id, old, state, info))
        return info

    # -- the attempts ------------------------------------------------------------------------

    def _thread_name(self) -> str:
        return f"laden-{self.direction.word}-{self.download.id}"

    def _work(self) -> None:
        transfer: Coordinator | None = self
        while transfer is not None:
            threading.current_thread().name = transfer._thread_name()
            transfer._run()
            transfer = self.ctx.next_transfer()

    def _run(self) -> None:
        download = self.download
        self._runner = threading.current_thread()
        try:
            while not self.stop_event.is_set():
                try:
                    self._attempt()
                    return
                except CHANGES as exc:
                    if not self._after_change(exc):
                        return
        except Skip as exc:
            with download.lock:
                download.record.finished = time.time()
                old = download.set_state(State.DONE, str(exc))
            self.save()
            info = download.info()
            self.ctx.emit(events.StateChanged(download.id, old, State.DONE, info))
            self.ctx.emit(events.Completed(download.id, info))
        except Cancelled:
            pass
        except DiskError as exc:
            self._end(State.PAUSED, f"paused: {exc}", waiting_for_space=exc.no_space)
        except LadenError as exc:
            self._end(State.FAILED, str(exc), error=exc)
        except Exception as exc:  # a bug must not take the whole program down
            log.exception("download %s failed unexpectedly", download.id)
            # Only the kind of error: its text may hold anything the failing code held (a
            # header line, a credential), and it goes to the journal and the screen.
            self._end(State.FAILED, f"internal error ({type(exc).__name__}); the details "
                                    "are in laden.log")
        finally:
            try:
                self.direction.close(self)
                self.ctx.transfer_ended(self)
            finally:
                self._ended.set()  # `join` returns however this ended

    def _attempt(self) -> None:
        direction = self.direction
        if not direction.prepare(self):
            return  # it was finished already
        # One snapshot for both events: nothing changes between them, and a small file's
        # snapshots were a tenth of its CPU.
        told = self.set_state(direction.moving)
        self.ctx.emit(events.Started(self.download.id, told or self.download.info()))
        self._move_bytes()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self.stop_event.is_set():
            raise Cancelled(self._stop_reason or "stopped")
        direction.finish(self)

    def _move_bytes(self) -> None:
        config = self.ctx.config
        self.health = Health(config.lowest_speed, config.stall_timeout)  # judged per attempt
        direction = self.direction
        plan = direction.plan
        count = 1
        if plan is not None:
            wanted = self.download.options.connections or config.connections
            missing = plan.size - plan.done_bytes()
            count = max(1, min(wanted, -(-missing // config.min_segment_size)))
        futures: list[Future[None]] = []
        if direction.begin(self, count):
            submit = self.ctx.executor.submit
            if plan is None:
                futures = [submit(run_single_stream, self, direction)]
            elif not plan.finished:
                futures = [submit(run_connection, self, direction, n) for n in range(count)]
        self._monitor(futures)
        unfinished = plan is not None and not plan.finished
        if unfinished and self._failure is None and not self.stop_event.is_set():
            self._failure = TransferError(self.download.record.message or "every connection failed")

    def _monitor(self, futures: list[Future[None]]) -> None:
        """Until the connections end, a few times a second: measure speeds, close connections
        too slow to keep, record progress, tell listeners."""
        download = self.download
        direction = self.direction
        download.start_sampling()
        last_checkpoint = last_flush = time.monotonic()
        pending = set(futures)
        health = self.health
        while pending:
            _done, pending = wait(pending, timeout=TICK)
            now = time.monotonic()
            download.sample(now, streamed=self.streamed if direction.plan is None else None)
            if pending and not self.stop_event.is_set():
                with download.lock:
                    connections = dict(download.connections)
                for number, reason in health.judge(connections, limited=self.limits.limited,
                                                   now=now).items():
                    self._replace_slow(connections[number], reason)
            if now - last_flush >= self.ctx.config.flush_interval:
                direction.checkpoint(self, flush=True)
                last_flush = last_checkpoint = now
            elif now - last_checkpoint >= self.ctx.config.checkpoint_interval:
                direction.checkpoint(self)
                last_checkpoint = now
            self.ctx.tell_progress(download, last=not pending)
        for future in futures:
            exc = future.exception()
            if exc is not None:
                self.fail(exc)

    def _replace_slow(self, live: Connection, reason: str) -> None:
        """Close a connection judged too slow. With ranges, its worker gives its range back
        and asks again on a fresh connection (see `connection.Replaced`); the one stream of a
        server without ranges can only start again, and counts as a retry."""
        abort = live.abort
        if abort is None:
            return
        live.replaced = reason
        if self.direction.plan is not None:
            self.download.add_error(f"{reason}; reconnecting")
        log.info("download %s: %s", self.download.id, reason)
        abort()

    # -- restarts and endings ----------------------------------------------------------------

    def _after_change(self, exc: TransferError) -> bool:
        """After a changed remote, a refused range or a checksum mismatch: go on with the bytes
        kept, or start again from the first byte; False when the transfer ends instead (too
        many restarts, a mismatch that would repeat, or stopped meanwhile)."""
        change, exc = self.direction.judge_change(self, exc)
        if change is Change.FAIL:
            self._end(State.FAILED, str(exc), error=exc)
            return False
        if change is Change.RESTART:
            self._restarts += 1
            if self._restarts > MAX_RESTARTS:
                self._end(State.FAILED, f"{exc}; it changed {self._restarts} times, giving up",
                          error=exc)
                return False
        self._wait_connections_gone()
        if self._stop_reason is not None:
            return False  # paused or cancelled meanwhile: the user's request wins
        # The failure that led here stopped the connections; the next attempt starts afresh.
        self._failure = None
        self.stop_event.clear()
        self.direction.go_on(self, change, exc)
        return True

    def _wait_connections_gone(self) -> None:
        deadline = time.monotonic() + 30
        while self.download.connections and time.monotonic() < deadline:
            time.sleep(0.02)

    def _end(self, state: State, message: str, *, waiting_for_space: bool = False,
             error: BaseException | None = None) -> None:
        download = self.download
        with download.lock:
            if self._stop_reason in ("pause", "cancel", "remove"):
                return  # the user's request decided the state already
            # The manager resumes it once there is room again (see scheduler.schedule).
            download.waiting_for_space = waiting_for_space
            if state is State.FAILED:
                download.add_error(message, permanent=error is not None and is_permanent(error))
            old = download.set_state(state, message)
            download.speed = 0.0
        self.save()
        info = download.info()
        self.ctx.emit(events.StateChanged(download.id, old, state, info))
        if state is State.FAILED:
            self.ctx.emit(events.Failed(download.id, message, info))
        elif state is State.PAUSED:
            self.ctx.emit(events.Paused(download.id, info))
