"""One running download: probe, plan, connections, checkpoints, verification, final rename.

A transfer runs on its own coordinator thread while its connections run on the manager's pool.
It never stitches two versions of a file: if the remote changed, it goes back to zero and says
why. Bytes count as done in the journal only after they are flushed to the partial file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from ..store.journal import boot_id
from . import direct, events
from .config import Config
from .connection import run_connection, run_single_stream
from .destination import Skip, choose_destination, renamed_whole
from .download import Connection, Download
from .errors import (
    Cancelled,
    ChecksumMismatch,
    DestinationExists,
    DiskError,
    JournalError,
    LadenError,
    Permanent,
    RangeNotSupported,
    RemoteChanged,
    RemoteError,
    Retryable,
    TransferError,
)
from .hashing import TrailingHasher
from .partfile import (
    PART_SUFFIX,
    PartialFile,
    allocated_bytes,
    check_free_space,
    ensure_folder,
    finish,
)
from .ratelimit import Limits, TokenBucket
from .retry import RetryPolicy
from .segments import SegmentPlan
from .states import State
from .verify import checksums_to_check, hash_file, record_digests

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
MAX_RESTARTS = 3


class EngineContext(Protocol):
    config: Config
    journal: Journal | None
    sources: SourceRegistry
    hosts: HostLimiter
    bandwidth: TokenBucket
    executor: ThreadPoolExecutor

    def emit(self, event: events.Event) -> None: ...
    def transfer_ended(self, transfer: Transfer) -> None: ...
    def save(self, download: Download) -> None: ...
    def taken_names(self, download_id: int) -> set[str]: ...


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
        self._whole_from_probe = False
        self.source: Source = None  # type: ignore[assignment]
        self.host = ""
        self.streamed = 0
        self.hasher: TrailingHasher | None = None
        self._stream_size: int | None = None
        self._lock = threading.Lock()
        self._restarts = 0
        self._thread = threading.Thread(
            target=self._run, name=f"laden-download-{download.id}", daemon=True
        )

    # -- called by the manager and by connections --------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, reason: str) -> None:
        """reason: "pause", "cancel" or "shutdown" (state kept, resumed next session)."""
        self.stop_reason = self.stop_reason or reason
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc
        self.stop_event.set()

    def backoff(self, attempt: int, exc: BaseException) -> bool:
        """Wait before retry `attempt`; False when retries are used up or the transfer stops."""
        policy = RetryPolicy(attempts=self.ctx.config.retries)
        if policy.exhausted(attempt):
            return False
        with self.download.lock:
            self.download.record.retries += 1
        retry_after = exc.retry_after if isinstance(exc, RemoteError) else None
        self.stop_event.wait(policy.delay(attempt, retry_after))
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

    def _run(self) -> None:
        download = self.download
        try:
            while not self.stop_event.is_set():
                try:
                    self._attempt()
                    return
                except (RemoteChanged, RangeNotSupported, ChecksumMismatch) as exc:
                    if isinstance(exc, RemoteChanged) and self._etag_is_a_token():
                        continue
                    if not self._restart_after(exc):
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
            self._end(State.FAILED, str(exc))
        except Exception as exc:  # a bug must not take the whole program down
            log.exception("download %s failed unexpectedly", download.id)
            self._end(State.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._drop_hasher()
            if download.state is not State.DONE:  # a finished download's record is saved
                self._checkpoint(final=True)
            self.part.close()
            self.ctx.transfer_ended(self)

    def _attempt(self) -> None:
        download = self.download
        with download.lock:
            # Bytes written from now on belong to this boot; `_adopt` saves it before any
            # progress is recorded (progress records carry only the ranges).
            download.record.boot_id = boot_id()
        self._set(State.CONNECTING)
        self._whole_from_probe = False
        self.source = self.ctx.sources.for_url(download.record.url)
        self.host = urlsplit(download.record.url).hostname or ""
        self.remote = self._probe()
        self._adopt(self.remote)
        if self._renamed_before_a_crash():
            self._mark_done()
            self._announce_done()
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
        if flush or not self._whole_from_probe:
            # A file that came whole with the probe is verified and renamed a moment later;
            # after a crash in between it is fetched again in one request, so its ranges need
            # no journal write of their own (a third of a small file's journal writes).
            self._checkpoint(final=True, flush=flush)
        self._verify()
        self._finish()

    def _probe(self) -> RemoteInfo:
        attempt = 0
        while True:
            try:
                return self.source.probe(self.download.record.url, self.download.options)
            except Permanent as exc:
                # 401 and 403 are sometimes passing (a token being rotated, a CDN warming up):
                # one more try before calling them final.
                if exc.status not in (401, 403) or attempt > 0:
                    raise
                attempt += 1
                self.download.add_error(str(exc))
                if not self.backoff(attempt, exc):
                    raise
            except Retryable as exc:
                attempt += 1
                self.download.add_error(str(exc))
                if not self.backoff(attempt, exc):
                    if self.stop_event.is_set():
                        raise Cancelled("stopped") from None
                    raise

    def _adopt(self, remote: RemoteInfo) -> None:
        """Take the probe's facts; restart when they describe another version of the file."""
        from ..sources.base import RemoteInfo

        download = self.download
        record = download.record
        if record.extra.get("etag_is_a_token"):
            # See _etag_is_a_token: this server's ETags say nothing, so they are not pinned.
            remote = self.remote = dataclasses.replace(remote, etag=None, version=None)
        if record.done_ranges:
            before = RemoteInfo(
                url=record.url, final_url=record.final_url or record.url, size=record.size,
                supports_ranges=bool(record.supports_ranges), etag=record.etag,
                last_modified=record.last_modified, version=record.version,
            )
            if not record.supports_ranges or not remote.supports_ranges:
                self._reset("the server cannot resume this file, so it starts again")
            elif not before.same_version(remote):
                if before.size == remote.size and not (
                    before.version or before.last_modified
                ) and any(c.get("origin") == "you" for c in record.checksums):
                    pass  # no validator to compare, but your checksum will catch a mix-up
                else:
                    self._reset(before.describe_change(remote))
        with download.lock:
            record.final_url = remote.final_url
            record.size = remote.size
            record.etag = remote.etag
            record.last_modified = remote.last_modified
            record.version = remote.version
            record.supports_ranges = remote.supports_ranges
            record.extra.update(remote.extra)
            mine = [c for c in record.checksums if c.get("origin") == "you"]
            published = [dataclasses.asdict(c) for c in remote.checksums]
            record.checksums = mine + (published if self.ctx.config.verify else [])
            if record.dest is None:
                self._choose_destination(remote)
        self.ctx.save(download)

    def _choose_destination(self, remote: RemoteInfo) -> None:
        choose_destination(
            self.download.record, self.download.options, remote, self._conflict_policy(),
            self.ctx.taken_names(self.download.id),
        )

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
                self._reset("the partial file is missing or shorter than recorded")
        size = record.size
        if size is not None:
            check_free_space(os.path.dirname(record.dest),
                             max(0, size - allocated_bytes(part_path)))
        self.part = PartialFile(part_path)
        self.part.open(direct_io=direct.wanted(self.ctx.config.direct_io,
                                               os.path.dirname(record.dest), size))
        if size is not None and record.supports_ranges:
            self.part.preallocate(size)
            self.plan = SegmentPlan(size, record.done_ranges,
                                    min_size=self.ctx.config.min_segment_size)
            self.download.plan = self.plan
        else:
            self.part.truncate(0)
            self.plan = None

    def _download(self) -> None:
        config = self.ctx.config
        plan = self.plan
        futures: list[Future[None]] = []
        body = self.remote.body if self.remote is not None else None
        if body is not None and len(body) == self.download.record.size:
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

    def _write_probe_body(self, body: bytes) -> None:
        """A small file that came whole with the probe: write it, as a connection would."""
        self._whole_from_probe = True
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
        while pending:
            _done, pending = wait(pending, timeout=TICK)
            now = time.monotonic()
            download.sample(now, streamed=self.streamed if self.plan is None else None)
            if now - last_flush >= self.ctx.config.flush_interval:
                self._checkpoint(flush=True)
                last_flush = last_checkpoint = now
            elif now - last_checkpoint >= self.ctx.config.checkpoint_interval:
                self._checkpoint()
                last_checkpoint = now
            self.ctx.emit(events.Progress(download.id, download.info()))
        for future in futures:
            exc = future.exception()
            if exc is not None:
                self.fail(exc)

    def _checkpoint(self, *, final: bool = False, flush: bool = False) -> None:
        """Record which bytes are written, and when `flush`, force them to disk first.

        Every checkpoint notes the kernel's boot id. After a crash or `kill -9` of laden the
        boot id is unchanged and the page cache still holds every written byte, so the
        written ranges are trusted; after a power cut or an OS crash it differs, and only the
        ranges last flushed are (see `Journal`). Forcing every checkpoint to disk would cap
        downloads at the disk's write speed, which curl, wget and aria2c never wait for.
        """
        plan = self.plan
        if plan is None or self.ctx.journal is None:
            return
        ranges = plan.done_ranges()
        try:
            if not final and not self.part.still_there():
                raise DiskError(f"{self.part.path} was deleted during the download, or its "
                                "folder was")
            if flush:
                self.part.flush()
        except DiskError as exc:
            self.fail(exc)
            return
        with self.download.lock:
            record = self.download.record
            record.done_ranges = ranges
            record.boot_id = boot_id()
            if flush:
                record.flushed_ranges = ranges
        if final or flush:
            self.ctx.save(self.download)
            return
        try:
            self.ctx.journal.save_progress(self.download.id, ranges)
        except JournalError as exc:
            # Progress that cannot be recorded is not safe to go on with: pause, keep the
            # bytes (the journal still holds its last true record) and say why.
            self.fail(DiskError(str(exc), no_space=exc.no_space))

    def _verify(self) -> None:
        download = self.download
        record = download.record
        size = record.size if self.plan is not None else self._stream_size
        actual = os.fstat(self.part.fd).st_size
        if size is not None and actual != size:
            raise Retryable(f"the partial file has {actual} bytes, expected {size}")
        with download.lock:
            record.size = size
        wanted = checksums_to_check(record.checksums)
        if not wanted:
            return
        self._set(State.VERIFYING)
        self.ctx.save(download)  # `laden list` in another terminal shows it: hashing takes time
        algorithms = {c["algorithm"] for c in wanted}
        digests = self._drop_hasher(keep=True)
        if digests is None or not algorithms <= digests.keys():
            digests = hash_file(self.part.path, algorithms, stop=self.stop_event)
        with download.lock:
            mismatch = record_digests(wanted, digests)
        self.ctx.save(download)
        self.ctx.emit(events.Verified(download.id, mismatch is None, download.info()))
        if mismatch is not None:
            raise mismatch

    def _drop_hasher(self, *, keep: bool = False) -> dict[str, str] | None:
        """Stop hashing along; with `keep`, first let it finish and return its digests."""
        hasher, self.hasher = self.hasher, None
        if hasher is None:
            return None
        if keep:
            return hasher.digests()
        hasher.abandon()
        return None

    def _finish(self) -> None:
        from .names import free_name

        download = self.download
        record = download.record
        assert record.dest is not None
        policy = self._conflict_policy()
        with download.lock:
            if self.stop_event.is_set():
                raise Cancelled(self.stop_reason or "stopped")
            self.part.close()
            while True:
                try:
                    finish(self.part.path, record.dest, overwrite=policy == "overwrite",
                           durable=self.ctx.config.flush_on_finish)
                    break
                except FileExistsError:
                    if policy != "rename":
                        raise DestinationExists(
                            f"{record.dest} appeared during the download (conflict policy "
                            f"{policy}); the download is kept as {self.part.path}"
                        ) from None
                    record.dest = free_name(record.dest, self.ctx.taken_names(self.download.id))
                    record.filename = os.path.basename(record.dest)
            self._mark_done()  # under the same lock hold as the rename: no pause in between
        self._announce_done()

    def _mark_done(self) -> None:
        download = self.download
        record = download.record
        with download.lock:
            record.finished = time.time()
            record.message = ""
            size = record.size or 0
            record.done_ranges = [(0, size)] if size else []
            download.plan = None
            download._bytes_done_cache = size
            download.speed = 0.0
            download.connections.clear()
            self._set(State.DONE)

    def _announce_done(self) -> None:
        self.ctx.save(self.download)
        self.ctx.emit(events.Completed(self.download.id, self.download.info()))

    def _renamed_before_a_crash(self) -> bool:
        """True when laden stopped between the final rename and the journal's record of it.

        The journal then says every byte is in the partial file, which is gone, and the final
        name holds a file of exactly the right size (and checksum, when one is known). That
        file is this download, finished: fetching it again would leave a duplicate `name.1`.
        """
        record = self.download.record
        if not record.dest or not renamed_whole(record):
            return False
        wanted = checksums_to_check(record.checksums)
        if wanted:
            self._set(State.VERIFYING)
            digests = hash_file(record.dest, {c["algorithm"] for c in wanted},
                                stop=self.stop_event)
            if any(digests[c["algorithm"]] != c["expected"] for c in wanted):
                return False
            with self.download.lock:
                for checksum in wanted:
                    checksum["actual"], checksum["verified"] = checksum["expected"], True
        return True

    def _etag_is_a_token(self) -> bool:
        """Policy for tokenized links: a server (often a CDN) that sends a new ETag with every
        answer while the size and Last-Modified stay the same. Such an ETag never matches an
        If-Range, so trusting it would restart the download forever.

        Two more probes decide, once per download: if they show two more ETags with the same
        size and Last-Modified, the ETag is dropped for good (recorded in the journal) and
        Last-Modified plus size are what later reads and resumes check. The download goes on
        with the bytes it has. Otherwise the change is real and the caller restarts.
        """
        record = self.download.record
        remote = self.remote
        if record.extra.get("etag_is_a_token") or not remote.etag or remote.size is None:
            return False
        try:
            probes = [self.source.probe(record.url, self.download.options) for _ in range(2)]
        except LadenError:
            return False
        if len({remote.etag, *(p.etag for p in probes)}) < 3 or any(
            p.size != remote.size or p.last_modified != remote.last_modified for p in probes
        ):
            return False
        self._wait_connections_gone()
        if self.stop_reason is not None:
            return False  # paused or cancelled meanwhile: the caller ends the attempt
        self._checkpoint(final=True)  # keep what this attempt wrote: same size and date
        with self.download.lock:
            record.extra["etag_is_a_token"] = True
            record.etag = record.version = None
        self.failure = None
        self.stop_event.clear()
        self.download.add_error(
            "the server sends a new ETag with every answer (a tokenized link); laden checks "
            "Last-Modified and the size instead")
        return True

    # -- restarts and endings ----------------------------------------------------------------

    def _restart_after(self, exc: TransferError) -> bool:
        """Go back to zero after `exc`; False when it has happened too often to try again."""
        self._restarts += 1
        record = self.download.record
        if isinstance(exc, RangeNotSupported):
            record.supports_ranges = False
        if self._restarts > (1 if isinstance(exc, ChecksumMismatch) else MAX_RESTARTS):
            reason = str(exc) if isinstance(exc, ChecksumMismatch) else (
                f"{exc}; it changed {self._restarts} times, giving up"
            )
            self._end(State.FAILED, reason)
            return False
        self._wait_connections_gone()
        if self.stop_reason is not None:
            return False  # paused or cancelled meanwhile: the user's request wins
        # The failure that led here stopped the connections; the next attempt starts afresh.
        self.stop_event.clear()
        self._reset(f"{exc}; starting again from the first byte")
        return True

    def _wait_connections_gone(self) -> None:
        deadline = time.monotonic() + 30
        while self.download.connections and time.monotonic() < deadline:
            time.sleep(0.02)

    def _reset(self, reason: str) -> None:
        download = self.download
        with download.lock:
            download.record.done_ranges = []
            download._bytes_done_cache = 0
            download.plan = None
            for checksum in download.record.checksums:
                checksum["actual"] = checksum["verified"] = None
        self._drop_hasher()
        self.plan = None
        self.failure = None
        self.part.close()
        record = download.record
        if record.dest and os.path.exists(record.dest + PART_SUFFIX):
            os.unlink(record.dest + PART_SUFFIX)
        download.add_error(reason)
        self.ctx.save(download)
        self.ctx.emit(events.Restarted(download.id, reason, download.info()))

    def _set(self, state: State) -> None:
        download = self.download
        with download.lock:
            if self.stop_event.is_set() and self.stop_reason:
                raise Cancelled(self.stop_reason)
            old = download.set_state(state)
        if old is not state:
            self.ctx.emit(events.StateChanged(download.id, old, state, download.info()))

    def _end(self, state: State, message: str, *, waiting_for_space: bool = False) -> None:
        download = self.download
        with download.lock:
            if self.stop_reason in ("pause", "cancel", "remove"):
                return  # the user's request decided the state already
            # The manager resumes it once there is room again (see DownloadManager._schedule).
            download.waiting_for_space = waiting_for_space
            if state is State.FAILED:
                download.add_error(message)
            old = download.set_state(state, message)
            download.speed = 0.0
        self.ctx.save(download)
        info = download.info()
        self.ctx.emit(events.StateChanged(download.id, old, state, info))
        if state is State.FAILED:
            self.ctx.emit(events.Failed(download.id, message, info))
        elif state is State.PAUSED:
            self.ctx.emit(events.Paused(download.id, info))
