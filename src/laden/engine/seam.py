"""The seam between a transfer's coordinator and the direction its bytes go.

The coordinator (`coordinator.Coordinator`) runs what every transfer has: the attempts, the
monitor, retries, restarts, state changes and endings. What depends on the direction is an
object it is handed, a `Direction`: the steps (prepare, checkpoint, finish, close) and the two
ends of the byte loop (`connection`): a `PieceReader` the bytes of a range are read from and a
`PieceSink` they are written to. A download's are in `downloading` (a source's ranges into a
partial file), an upload's in `uploading` (a local file's ranges into parts sent to a service).

Steps and the byte loop never see the coordinator: what they may ask of the transfer running
them is the `Run` below, and nothing else. This module imports neither side.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Container
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from ..core.errors import Cancelled

if TYPE_CHECKING:
    from ..core.config import Config
    from ..core.errors import TransferError
    from ..core.snapshots import DownloadInfo
    from ..core.states import State
    from ..sources.base import RangeReader
    from ..sources.registry import SourceRegistry
    from ..store.journal import Journal
    from .download import Connection, Download
    from .events import Event
    from .hashing import TrailingHasher
    from .health import Health
    from .hosts import HostLimiter
    from .pieces import PieceRecorder
    from .ratelimit import Limits
    from .segments import SegmentPlan


class Skip(Cancelled):
    """Nothing to move: the transfer counts as done as it is (conflict policy skip, and the
    destination exists). Its text is the download's message."""


class Change(enum.Enum):
    """What a direction makes of a changed remote, a refused range or a checksum mismatch
    (`Direction.judge_change`); the coordinator's restart policy acts on it."""

    KEEP = "keep"
    """Not a change after all: go on with the bytes already moved, not counted as a restart."""
    RESTART = "restart"
    """Start again from the first byte; counted, and too many restarts end the transfer."""
    FAIL = "fail"
    """Doing it again would end the same way: the transfer fails now."""


class Run(Protocol):
    """What a running transfer lends its steps and its connections."""

    download: Download
    stop_event: threading.Event
    """Set when the transfer stops (paused, cancelled, failed): steps and connections end."""
    limits: Limits
    health: Health
    """The attempt's judge of slow connections (see `health`)."""
    streamed: int
    """Bytes moved by one stream without ranges (written as they move: the monitor's count)."""

    @property
    def config(self) -> Config: ...
    @property
    def journal(self) -> Journal | None: ...
    @property
    def sources(self) -> SourceRegistry: ...
    @property
    def hosts(self) -> HostLimiter: ...
    @property
    def stop_reason(self) -> str | None:
        """Why someone asked the transfer to stop: "pause", "cancel", "remove", "shutdown"."""
    @property
    def stream_size(self) -> int | None:
        """Bytes of a stream of unknown length, once it ended whole (`finish_stream`)."""

    def set_state(self, state: State) -> DownloadInfo | None:
        """Move the download to `state` and say so; raises Cancelled once it is stopping.
        Returns the snapshot told with it (None when the state was already `state`), for an
        event that follows at once to carry too."""
    def save(self) -> None:
        """Write the download's record to the journal."""
    def emit(self, event: Event) -> None: ...
    def choosing_name(self) -> AbstractContextManager[Container[str]]:
        """Settle the download's name inside this block (see `claims`)."""
    def fail(self, exc: BaseException) -> None:
        """End the transfer with `exc` (the first failure wins); connections stop."""
    def backoff(self, attempt: int, exc: BaseException) -> bool:
        """Wait before retry `attempt`; False when retries are used up or the transfer stops."""
    def connection(self, number: int) -> Connection: ...
    def drop_connection(self, number: int) -> None: ...
    def other_connections(self, number: int) -> int: ...
    def finish_stream(self, size: int) -> None: ...


class PieceReader(Protocol):
    """The end the bytes come from, a range at a time (a download's: the source)."""

    @property
    def size(self) -> int | None:
        """Bytes the whole stream has, if known: a stream that ends short is retried."""
    def open_range(self, start: int, end: int | None) -> RangeReader:
        """Bytes `start` to `end` (None: to the end), to be read in order. The reader may also
        offer `abort()` (closes it from another thread), `can_splice` and `splice_into`."""
    def renew(self) -> None:
        """The address expired: ask for a fresh one, for the same version only."""


class PieceSink(Protocol):
    """The end the bytes go to, written at their offset (a download's: the partial file)."""

    @property
    def direct(self) -> bool:
        """Whether writes placed by `direct.slot` skip the page cache (reads then fill the
        buffer first, so each write is large)."""
    def write(self, data: memoryview, offset: int, *, placed: bool = False) -> None: ...
    def splice_in(self, pipe: int, count: int, offset: int) -> None: ...


class Ends(Protocol):
    """What the byte loop (`connection`) works with in one attempt: its two ends, the plan of
    what is left to move, and what hashes the bytes on their way."""

    plan: SegmentPlan | None
    """What is left to move, in ranges; None for one stream from the first byte."""
    hasher: TrailingHasher | None
    """Hashes the bytes in order as they are written, when a checksum is to be checked."""
    pieces: PieceRecorder | None
    """Piece hashes taken from the bytes as they are written (see `pieces`)."""

    @property
    def reader(self) -> PieceReader: ...
    @property
    def sink(self) -> PieceSink: ...
    @property
    def host(self) -> str:
        """The host connections go to, limited together (see `hosts`)."""


class Direction(Ends, Protocol):
    """What one transfer does that depends on which way its bytes go.

    The coordinator calls, per attempt: `prepare`, then `begin`, then the byte loop runs between
    `reader` and `sink` over `plan` while the monitor calls `checkpoint`, then `finish`; after a
    change, `judge_change` and `go_on`; once at the end, `close`.
    """

    moving: State
    """The state while the bytes move: DOWNLOADING or UPLOADING."""
    word: str
    """"download" or "upload": in thread names and the log."""

    def prepare(self, run: Run) -> bool:
        """Everything before the first byte moves; False when the transfer turned out to be
        finished already (it is then marked done)."""
    def begin(self, run: Run, connections: int) -> bool:
        """Ready the byte loop for `connections` connections; False when no connection is
        needed (the bytes are all moved, or there are none)."""
    def checkpoint(self, run: Run, *, final: bool = False, flush: bool = False) -> None:
        """Record what is moved; with `flush`, force it to disk first."""
    def finish(self, run: Run) -> None:
        """Once every byte has moved: check them, put them in place, mark the transfer done."""
    def judge_change(self, run: Run, exc: TransferError) -> tuple[Change, TransferError]:
        """What `exc` (a changed remote, a refused range, a mismatch) means for this transfer,
        with the error to report."""
    def go_on(self, run: Run, change: Change, exc: TransferError) -> None:
        """Ready the next attempt after `judge_change`: keep the bytes, or start from zero."""
    def close(self, run: Run) -> None:
        """However the transfer ended: stop what runs along, record what is moved unless it is
        done, let go of the files."""
