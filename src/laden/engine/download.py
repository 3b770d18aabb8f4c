"""One download as the manager holds it: the journal record, the live state, and snapshots."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..core.options import DownloadOptions
from ..core.snapshots import ChecksumInfo, ConnectionInfo, DownloadInfo, ErrorRecord, Tick
from ..core.states import State, check_transition
from ..store.journal import Record
from .formats import FormatReport
from .segments import SegmentPlan, merge_ranges

if TYPE_CHECKING:
    from ..sources.base import RemoteInfo
    from .ratelimit import TokenBucket

MAX_ERRORS = 20
HISTORY_SECONDS = 300
SPEED_SAMPLES = 12
"""Samples the speed is averaged over: three seconds at four a second."""
PROGRESS_INTERVAL = 0.2
"""Seconds between two progress ticks of one download, at least (see `Download.tick`)."""

_sequence = itertools.count(1)
"""Numbers the snapshots and ticks of every download (`DownloadInfo.sequence`). One count for
all: a download read again from the journal never goes back to an earlier number."""


@dataclass
class Connection:
    """Live numbers of one connection, written by its worker, read by snapshots."""

    number: int
    start: int = 0
    end: int = 0
    position: int = 0
    bytes: int = 0
    speed: float = 0.0
    retries: int = 0
    last_status: str = "starting"
    since: float = 0.0
    """When its current answer's body began (monotonic); 0 while it is not reading one."""
    abort: Callable[[], None] | None = field(default=None, repr=False)
    """Closes the answer being read, from another thread (see `health`)."""
    replaced: str | None = None
    """Why the transfer closed this connection for being too slow."""
    _sampled: tuple[float, int] = field(default=(0.0, 0), repr=False)

    def measure(self, now: float) -> None:
        """Its speed since the last measure (none before the first)."""
        when, before = self._sampled
        if when:
            self.speed = (self.bytes - before) / max(1e-6, now - when)
        self._sampled = (now, self.bytes)


class Running(Protocol):
    """What the queue holds of a download's running transfer (a `coordinator.Coordinator`)."""

    own_limit: TokenBucket

    @property
    def stop_reason(self) -> str | None: ...
    def stop(self, reason: str) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


class Download:
    def __init__(self, record: Record, options: DownloadOptions) -> None:
        self.record = record
        self.options = options
        self.lock = threading.RLock()
        self.state = State(record.state)
        self.held = False
        """Interrupted in an earlier session and waiting for someone to resume it."""
        self.waiting_for_space = False
        """Paused because the disk was full; the manager resumes it when there is room."""
        self.transfer: Running | None = None
        self.remote: RemoteInfo | None = None
        self.plan: SegmentPlan | None = None
        self.connections: dict[int, Connection] = {}
        self.speed = 0.0
        self.history: deque[float] | None = None
        """One speed a second while it runs (`sample`); made with the first. An empty deque
        with a bound takes most of a kilobyte, and a list of 100,000 small files holds as many
        downloads, most of which never run long enough for a point."""
        self._history_shown: tuple[float, ...] | None = None
        """`history` as snapshots show it, made again only when it changes."""
        self._errors_shown: tuple[ErrorRecord, ...] | None = None
        """`record.errors` as snapshots show them, made again only when they change."""
        self._told_at = float("-inf")
        """When the last progress tick was made (`tick`)."""
        self._samples: deque[tuple[float, int]] | None = None
        self._last_history = 0.0
        self._bytes_done_cache = sum(e - s for s, e in record.done_ranges)
        self._finished: threading.Event | None = None
        self.retry_at: float | None = None
        """While a connection or the probe waits before trying again (see Transfer.backoff)."""
        self._planned: tuple[tuple[str, str | None, str], str] | None = None
        """(folder, name, address) and the path they give, until the probe settles `dest`."""

    @classmethod
    def from_journal(cls, record: Record) -> Download:
        """The download a journal record describes, with the options it kept (no secrets)."""
        return cls(record, DownloadOptions.from_journal(record.options))

    @property
    def id(self) -> int:
        return self.record.id

    def set_state(self, new: State, message: str | None = None) -> State:
        """Move to `new` (checked against the state machine); returns the old state."""
        with self.lock:
            old = self.state
            check_transition(old, new)
            self.state = new
            self.record.state = new.value
            if message is not None:
                self.record.message = message
            if self._finished is not None:
                if new.is_settled:
                    self._finished.set()
                else:
                    self._finished.clear()
            return old

    def wake_waiters(self) -> None:
        """Wake whoever waits on `finished_event` (nobody, when it was never asked for)."""
        with self.lock:
            if self._finished is not None:
                self._finished.set()

    @property
    def finished_event(self) -> threading.Event:
        """Set while the download is settled, a wake-up for `DownloadManager.wait`; made when
        first asked for (see `history`)."""
        with self.lock:
            if self._finished is None:
                self._finished = threading.Event()
                if self.state.is_settled:
                    self._finished.set()
            return self._finished

    def settled(self) -> bool:
        """True once `DownloadManager.wait` returns for it: done, failed, cancelled, paused, or
        held from an earlier session, and its transfer's thread has let go of it."""
        with self.lock:
            state = self.state
            held = state is State.QUEUED and self.held
            return (state.is_settled or held) and self.transfer is None

    def set_done_ranges(self, ranges: list[tuple[int, int]]) -> None:
        """The bytes on disk are `ranges` now, and no plan is running: none after a cancel or
        a restart from zero, the whole file once it is done."""
        with self.lock:
            self.record.done_ranges = ranges
            self.plan = None
            self._bytes_done_cache = sum(end - start for start, end in ranges)

    def add_error(self, message: str, *, permanent: bool = False) -> None:
        with self.lock:
            error: dict[str, Any] = {"time": time.time(), "message": message}
            if permanent:  # the journal only says so when it is true
                error["permanent"] = True
            self.record.errors.append(error)
            del self.record.errors[:-MAX_ERRORS]
            self.record.message = message
            self._errors_shown = None

    def start_sampling(self) -> None:
        """Forget earlier samples: a pause must not count as a slow second."""
        with self.lock:
            self._samples = None  # made again by the first sample (see `history`)

    def sample(self, now: float, *, streamed: int | None = None) -> None:
        """Measure speeds now (called a few times a second while the download runs):
        over the last three seconds for the download, since the last sample per connection,
        and one history point a second. `streamed`: bytes done when there is no plan."""
        done = self.done_bytes() if streamed is None else streamed
        with self.lock:
            if streamed is not None:
                self._bytes_done_cache = streamed
            samples = self._samples
            if samples is None:
                samples = self._samples = deque(maxlen=SPEED_SAMPLES)
            samples.append((now, done))
            first_time, first_done = samples[0]
            elapsed = now - first_time
            self.speed = (done - first_done) / elapsed if elapsed > 0 else 0.0
            for conn in self.connections.values():
                conn.measure(now)
            if now - self._last_history >= 1.0:
                if self.history is None:
                    self.history = deque(maxlen=HISTORY_SECONDS)
                self.history.append(self.speed)
                self._history_shown = None
                self._last_history = now

    def done_bytes(self) -> int:
        plan = self.plan
        if plan is not None:
            self._bytes_done_cache = plan.done_bytes()
        return self._bytes_done_cache

    def done_ranges(self) -> list[tuple[int, int]]:
        plan = self.plan
        # An upload's are the parts the service acknowledged (what a resume keeps), which its
        # direction records; its plan also counts bytes read into parts still being sent.
        if plan is not None and self.record.direction != "upload":
            return plan.done_ranges()
        return merge_ranges(self.record.done_ranges)

    def _dest(self) -> str:
        """Where the file goes: `record.dest` once the probe has settled its name, before that
        the path its address and folder give. That one is kept until then: every event about
        a queued download asks for it, and parsing the address each time was a fifth of the
        CPU of a list of small files."""
        record = self.record
        if record.dest:
            self._planned = None
            return record.dest
        key = (record.dest_dir, record.filename, record.url)
        if self._planned is None or self._planned[0] != key:
            from ..core.names import filename_from_url

            path = os.path.join(record.dest_dir, record.filename
                                or filename_from_url(record.url) or "")
            self._planned = (key, path)
        return self._planned[1]

    def info(self) -> DownloadInfo:
        """A snapshot of the whole download, numbered (see `DownloadInfo.sequence`)."""
        with self.lock:
            record = self.record
            done, speed, eta = self._numbers()
            return DownloadInfo(
                id=record.id,
                url=record.url,
                final_url=record.final_url,
                source=record.source,
                dest=self._dest(),
                state=self.state,
                size=record.size,
                done=done,
                speed=speed,
                eta=eta,
                done_ranges=tuple(self.done_ranges()),
                connections=self._connections(),
                checksums=tuple(ChecksumInfo(**c) for c in record.checksums),
                etag=record.etag,
                last_modified=record.last_modified,
                resumable=bool(record.supports_ranges) or done == 0,
                retries=record.retries,
                errors=self._errors(),
                message=record.message,
                options=dict(record.options),
                created=record.created,
                finished=record.finished,
                position=record.position,
                speed_history=self._history(),
                group=record.group,
                retry_at=self.retry_at,
                supports_ranges=record.supports_ranges,
                skipped=bool(record.extra.get("skipped")),
                format_check=FormatReport.from_journal(record.extra.get("format_check")),
                direction=record.direction,
                sequence=next(_sequence),
            )

    def tick(self, now: float, *, last: bool = False) -> Tick | None:
        """What changed since the last snapshot, for a progress event: None when the last tick
        was made less than `PROGRESS_INTERVAL` ago. This is the one throttle of progress: the
        faces hold none back. `last` (a transfer's last look) always passes, so the numbers a
        download stops at are told."""
        with self.lock:
            if not last and now - self._told_at < PROGRESS_INTERVAL:
                return None
            self._told_at = now
            record = self.record
            done, speed, eta = self._numbers()
            return Tick(
                id=record.id,
                sequence=next(_sequence),
                state=self.state,
                size=record.size,
                done=done,
                speed=speed,
                eta=eta,
                done_ranges=tuple(self.done_ranges()),
                connections=self._connections(),
                speed_history=self._history(),
                retries=record.retries,
                retry_at=self.retry_at,
                message=record.message,
                errors=self._errors(),
                resumable=bool(record.supports_ranges) or done == 0,
                position=record.position,
            )

    def _numbers(self) -> tuple[int, float, float | None]:
        """Bytes done, speed and seconds left, as snapshots show them. The caller holds the
        lock."""
        done = self.done_bytes()
        size = self.record.size
        active = self.state.is_moving or self.state is State.CONNECTING
        speed = self.speed if active else 0.0
        eta = (size - done) / speed if active and speed > 0 and size is not None else None
        return done, speed, eta

    def _connections(self) -> tuple[ConnectionInfo, ...]:
        return tuple(ConnectionInfo(c.number, c.start, c.end, c.position, c.bytes, c.speed,
                                    c.retries, c.last_status)
                     for c in self.connections.values())

    def _errors(self) -> tuple[ErrorRecord, ...]:
        shown = self._errors_shown
        if shown is None:
            shown = self._errors_shown = tuple(
                ErrorRecord(e["time"], e["message"], bool(e.get("permanent")))
                for e in self.record.errors)
        return shown

    def _history(self) -> tuple[float, ...]:
        shown = self._history_shown
        if shown is None:
            shown = self._history_shown = tuple(self.history or ())
        return shown
