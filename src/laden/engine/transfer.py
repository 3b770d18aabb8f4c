"""One running download: probe, plan, connections, checkpoints, verification, final rename.

A transfer runs on its own coordinator thread while its connections run on the manager's pool.
It never stitches two versions of a file: if the remote changed, it goes back to zero and says
why. Bytes count as done in the journal only after they are flushed to the partial file.

This module is the coordinator; its steps live beside it: `probing` (ask the server, take its
answer), `checkpoints`, `finishing` (verify, rename, record done) and `restarts`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Container
from concurrent.futures import Future, wait
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from ..core.config import Config
from ..core.errors import (
    Cancelled,
    ChecksumMismatch,
    DiskError,
    LadenError,
    RangeNotSupported,
    RemoteChanged,
    RemoteError,
    TransferError,
    is_permanent,
)
from ..core.names import free_name
from ..core.retry import RetryPolicy
from ..core.states import State
from ..store.journal import boot_id
from . import direct, events
from .checkpoints import checkpoint
from .connection import run_connection, run_single_stream
from .destination import Skip
from .download import Connection, Download
from .finishing import announce_done, finish_download, mark_done, renamed_before_a_crash, verify
from .hashing import TrailingHasher
from .health import Health
from .partfile import (
    PART_SUFFIX,
    PartialFile,
    PartialFileTaken,
    allocated_bytes,
    check_free_space,
    ensure_folder,
)
from .pieces import PieceRecorder
from .probing import adopt, probe
from .ratelimit import Limits, TokenBucket
from .restarts import etag_is_a_token, reset, restart_after
from .segments import SegmentPlan
from .verify import checksums_to_check

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ..sources.base import RemoteInfo, Source
    from ..sources.registry import SourceRegistry
    from ..store.journal import Journal
    from .hosts import HostLimiter

log = logging.getLogger("laden.transfer")
TICK = 0.25
IN_ORDER_PIECE = 4 << 20
"""Piece size when a checksum is computed during the download: small enough that the pieces in
flight mostly fit the hasher's window (`hashing.WINDOW`), large enough that requests stay few.
2, 4 and 8 MiB measured alike on a 2 GiB file with 16 connections; 1 MiB was slower."""


class EngineContext(Protocol):
    config: Config
    journal: Journal | None
    sources: SourceRegistry
    hosts: HostLimiter
    bandwidth: TokenBucket
    executor: ThreadPoolExecutor

    def emit(self, event: events.Event) -> None: ...
    def tell_progress(self, download: Download, *, last: bool = False) -> None: ...
    def transfer_ended(self, transfer: Transfer) -> None: ...
    def next_transfer(self) -> Transfer | None: ...
    def save(self, download: Download) -> None: ...
    def choosing_name(self, download: Download) -> AbstractContextManager[Container[str]]: ...


class Transfer:
    def __init__(self, ctx: EngineContext, download: Download) -> None:
        self.ctx = ctx
        self.download = download
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.failure: BaseException | None = None
        self.own_limit = TokenBucket(download.options.limit_rate)
        self.limits = Limits(self.own_limit, ctx.bandwidth)
        self.plan: SegmentPlan | None = None
        self.part: PartialFile = PartialFile("")
        self.remote: RemoteInfo = None  # type: ignore[assignment]  # set by the probe
        self.source: Source = None  # type: ignore[assignment]
        self.host = ""
        self.streamed = 0
        self.hasher: TrailingHasher | None = None
        self.pieces: PieceRecorder | None = None
        """The piece hashes the connections compute as they write (see `pieces`)."""
        self.health = Health(ctx.config.lowest_speed, ctx.config.stall_timeout)
        self._stream_size: int | None = None
        self._lock = threading.Lock()
        self._restarts = 0
        self._ended = threading.Event()
        self._runner: threading.Thread | None = None

    # -- called by the manager and by connections --------------------------------------------

    def start(self) -> None:
        """Run on a new thread, which goes on with the next queued download when this one
        ends (see `scheduler.next_in_this_thread`)."""
        threading.Thread(target=self._work, name=self._thread_name(), daemon=True).start()

    def stop(self, reason: str) -> None:
        """reason: "pause", "cancel" or "shutdown" (state kept, resumed next session)."""
        self.stop_reason = self.stop_reason or reason
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._runner is not threading.current_thread():
            self._ended.wait(timeout)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc
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

    def reresolve(self) -> None:
        """A signed or CDN address expired: ask the original address again, same version only."""
        with self._lock:
            fresh = self.source.probe(self.download.record.url, self.download.options)
            if not self.remote.same_version(fresh):
                raise RemoteChanged("the remote file changed while its address was renewed")
            self.remote = dataclasses.replace(self.remote, final_url=fresh.final_url)

    def finish_stream(self, size: int) -> None:
        self._stream_size = size

    # -- the coordinator ---------------------------------------------------------------------

    def _thread_name(self) -> str:
        return f"laden-download-{self.download.id}"

    def _work(self) -> None:
        transfer: Transfer | None = self
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
                except (RemoteChanged, RangeNotSupported, ChecksumMismatch) as exc:
                    if isinstance(exc, RemoteChanged) and etag_is_a_token(self):
                        continue
                    if not restart_after(self, exc):
                        return
        except Skip as exc:
            with download.lock:
                download.record.finished = time.time()
                old = download.set_state(State.DONE, str(exc))
            self.ctx.save(download)
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
                self._drop_hasher()
                if download.state is not State.DONE:  # a finished download's record is saved
                    checkpoint(self, final=True)
                self.part.close()
                self.ctx.transfer_ended(self)
            finally:
                self._ended.set()  # `join` returns however this ended

    def _attempt(self) -> None:
        download = self.download
        with download.lock:
            # Bytes written from now on belong to this boot; `_adopt` saves it before any
            # progress is recorded (progress records carry only the ranges).
            download.record.boot_id = boot_id()
            download.record.pieces = None  # they describe the finished file: it is written anew
        self._set(State.CONNECTING)
        self.source = self.ctx.sources.for_url(download.record.url)
        self.host = urlsplit(download.record.url).hostname or ""
        named_before = download.record.dest is not None  # by an earlier attempt or session
        self.remote = probe(self)
        adopt(self, self.remote)
        # A name chosen just now was free: nothing can have been renamed to it yet.
        if named_before and renamed_before_a_crash(self):
            mark_done(self)
            announce_done(self)
            return
        self._prepare_file()
        self._set(State.DOWNLOADING)
        self.ctx.emit(events.Started(download.id, download.info()))
        self._download()
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        if self.stop_event.is_set():
            raise Cancelled(self.stop_reason or "stopped")
        flush = self.ctx.config.flush_on_finish
        if flush or self._probe_body() is None:
            # A file that came whole with the probe is verified and renamed a moment later;
            # after a crash before the rename it is fetched again in one request, and after
            # one between the rename and the journal's record of it, the bytes at its final
            # name are compared with the probe's (`destination.renamed_whole`). So its
            # ranges need no journal write of their own (a third of a small file's writes).
            checkpoint(self, final=True, flush=flush)
        verify(self)
        finish_download(self)

    def _conflict_policy(self) -> str:
        return self.download.options.conflict or self.ctx.config.conflict

    def _prepare_file(self) -> None:
        record = self.download.record
        assert record.dest is not None
        ensure_folder(os.path.dirname(record.dest))
        part_path = record.dest + PART_SUFFIX
        if record.done_ranges:
            have = os.path.getsize(part_path) if os.path.exists(part_path) else -1
            if have < max(end for _, end in record.done_ranges):
                reset(self, "the partial file is missing or shorter than recorded")
        size = record.size
        if size is not None:
            check_free_space(os.path.dirname(record.dest),
                             max(0, size - allocated_bytes(part_path)))
        identity = self._open_part(size)
        if record.extra.get("part") != identity:
            with self.download.lock:
                record.extra["part"] = identity
            self.ctx.save(self.download)  # before any byte is written: this file is ours
        if size is not None and record.supports_ranges:
            if self._probe_body() is None:  # a file already in memory is written at once
                self.part.preallocate(size)
            self.plan = SegmentPlan(size, record.done_ranges,
                                    min_size=self.ctx.config.min_segment_size)
            self.download.plan = self.plan
        else:
            self.part.truncate(0)
            self.plan = None

    def _open_part(self, size: int | None) -> list[int]:
        """Open this download's partial file. Under the rename policy, a name whose partial
        file another laden process made a moment ago is given up for the next free one."""
        record = self.download.record
        assert record.dest is not None
        direct_io = direct.wanted(self.ctx.config.direct_io, os.path.dirname(record.dest), size)
        self.part.close()  # an earlier attempt's: its lock would refuse this one's
        for _ in range(100):
            self.part = PartialFile(record.dest + PART_SUFFIX)
            try:
                return self.part.open(record.extra.get("part"), resumed=bool(record.done_ranges),
                                      direct_io=direct_io)
            except PartialFileTaken:
                if self._conflict_policy() != "rename" or record.done_ranges:
                    raise
            with self.ctx.choosing_name(self.download) as taken, self.download.lock:
                record.dest = free_name(record.dest, taken)
                record.filename = os.path.basename(record.dest)
        raise PartialFileTaken(f"no free name for {record.dest} in 100 tries")

    def _download(self) -> None:
        config = self.ctx.config
        self.health = Health(config.lowest_speed, config.stall_timeout)  # judged per attempt
        plan = self.plan
        futures: list[Future[None]] = []
        size = self.download.record.size
        self.pieces = PieceRecorder(size) if size is not None else None
        body = self._probe_body()
        if body is not None:
            self._write_probe_body(body)
        elif plan is not None:
            wanted = self.download.options.connections or config.connections
            missing = plan.size - plan.done_bytes()
            count = max(1, min(wanted, -(-missing // config.min_segment_size)))
            checks = checksums_to_check(self.download.record.checksums)
            if checks and plan.size:
                # Small files still spread over their connections: about four pieces each.
                piece = min(IN_ORDER_PIECE, plan.size // (count * 4))
                plan.split_for(count, in_order=max(config.min_segment_size, piece))
                self.hasher = TrailingHasher(self.part.path, {c["algorithm"] for c in checks},
                                             plan, plan.size, direct_io=self.part.direct)
            else:
                plan.split_for(count)
            if not plan.finished:
                futures = [self.ctx.executor.submit(run_connection, self, n) for n in range(count)]
        elif self.download.record.size != 0:
            futures = [self.ctx.executor.submit(run_single_stream, self)]
        self._monitor(futures)
        unfinished = plan is not None and not plan.finished
        if unfinished and self.failure is None and not self.stop_event.is_set():
            self.failure = TransferError(self.download.record.message or "every connection failed")

    def _probe_body(self) -> bytes | None:
        """The whole file, when this attempt's probe carried it (see `RemoteInfo.body`)."""
        body = self.remote.body if self.remote is not None else None
        return body if body is not None and len(body) == self.download.record.size else None

    def _write_probe_body(self, body: bytes) -> None:
        """A small file that came whole with the probe: write it, as a connection would."""
        plan = self.plan
        if plan is not None:
            segment = plan.take(0)
            if segment is None:
                return  # already complete (a resume after the last byte was written)
            start = segment.position
            plan.reserve(segment, segment.end - start)
            self.part.write(memoryview(body)[start : segment.end], start)
            plan.advance(segment, segment.end - start)
        else:
            self.part.write(memoryview(body), 0)
            self.streamed = len(body)
            self.finish_stream(len(body))
        self.limits.consume(len(body), self.stop_event)

    def _monitor(self, futures: list[Future[None]]) -> None:
        download = self.download
        download.start_sampling()
        last_checkpoint = last_flush = time.monotonic()
        pending = set(futures)
        health = self.health
        while pending:
            _done, pending = wait(pending, timeout=TICK)
            now = time.monotonic()
            download.sample(now, streamed=self.streamed if self.plan is None else None)
            if pending and not self.stop_event.is_set():
                with download.lock:
                    connections = dict(download.connections)
                for number, reason in health.judge(connections, limited=self.limits.limited,
                                                   now=now).items():
                    self._replace_slow(connections[number], reason)
            if now - last_flush >= self.ctx.config.flush_interval:
                checkpoint(self, flush=True)
                last_flush = last_checkpoint = now
            elif now - last_checkpoint >= self.ctx.config.checkpoint_interval:
                checkpoint(self)
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
        if self.plan is not None:
            self.download.add_error(f"{reason}; reconnecting")
        log.info("download %s: %s", self.download.id, reason)
        abort()

    def _drop_hasher(self, *, keep: bool = False) -> dict[str, str] | None:
        """Stop hashing along; with `keep`, first let it finish and return its digests."""
        hasher, self.hasher = self.hasher, None
        if hasher is None:
            return None
        if keep:
            return hasher.digests()
        hasher.abandon()
        return None

    # -- restarts and endings ----------------------------------------------------------------

    def _set(self, state: State) -> None:
        download = self.download
        with download.lock:
            if self.stop_event.is_set() and self.stop_reason:
                raise Cancelled(self.stop_reason)
            old = download.set_state(state)
        if old is not state:
            self.ctx.emit(events.StateChanged(download.id, old, state, download.info()))

    def _end(self, state: State, message: str, *, waiting_for_space: bool = False,
             error: BaseException | None = None) -> None:
        download = self.download
        with download.lock:
            if self.stop_reason in ("pause", "cancel", "remove"):
                return  # the user's request decided the state already
            # The manager resumes it once there is room again (see scheduler.schedule).
            download.waiting_for_space = waiting_for_space
            if state is State.FAILED:
                download.add_error(message, permanent=error is not None and is_permanent(error))
            old = download.set_state(state, message)
            download.speed = 0.0
        self.ctx.save(download)
        info = download.info()
        self.ctx.emit(events.StateChanged(download.id, old, state, info))
        if state is State.FAILED:
            self.ctx.emit(events.Failed(download.id, message, info))
        elif state is State.PAUSED:
            self.ctx.emit(events.Paused(download.id, info))
