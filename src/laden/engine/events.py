"""What the engine tells its listeners, as frozen dataclasses.

Listeners are called on engine threads: they must be quick and thread-safe (the TUI posts a
Textual message; the CLI updates a progress bar). Progress is throttled once, at the source:
at most five events a second per download, never one per chunk; nothing holds any back after
that. Every other event carries a whole snapshot (`info`), taken after the change it tells;
a progress event carries what moves (`Progress.tick`) and makes the whole snapshot only when
it is read. Snapshots and ticks are numbered (`DownloadInfo.sequence`), so one that arrives
after a newer one can be dropped without asking the manager.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.snapshots import DownloadInfo, Tick
from ..core.states import State


@dataclass(frozen=True)
class Event:
    """Base class of every event: which download it is about."""

    download_id: int


@dataclass(frozen=True)
class Added(Event):
    """`add` queued a new download (not sent for one it continued or kept)."""

    info: DownloadInfo


@dataclass(frozen=True)
class AlreadyDownloaded(Event):
    """`add` found the file an earlier download saved there and kept it (see `reruns`);
    `checked` says how it was checked ("size checked, not hashed again", ...) and `hashed`
    with which algorithm it was hashed just now (None: not hashed)."""

    checked: str
    hashed: str | None
    info: DownloadInfo


@dataclass(frozen=True)
class Started(Event):
    """The server answered and the partial file is ready: bytes start arriving."""

    info: DownloadInfo


class Snapshots(Protocol):
    """What a progress event makes its `info` from: the download as the engine holds it."""

    lock: AbstractContextManager[Any]

    def info(self) -> DownloadInfo: ...


@dataclass(frozen=True, init=False)
class Progress(Event):
    """Bytes arrived, or something shown changed (queue place): at most five a second per
    download, and the last numbers of a transfer always, never one per chunk.

    `Progress(download_id, info)` makes one of a whole snapshot; the engine's own ticks
    (`of_tick`) carry only the moving numbers, and their `info` is made when first read.
    """

    tick: Tick
    """Bytes done, speed, connections and the rest of what moves while a download runs,
    taken at the moment of the event."""

    def __init__(self, download_id: int, info: DownloadInfo) -> None:
        object.__setattr__(self, "download_id", download_id)
        object.__setattr__(self, "tick", Tick.of(info))
        object.__setattr__(self, "_info", info)
        object.__setattr__(self, "_download", None)

    @classmethod
    def of_tick(cls, tick: Tick, download: Snapshots) -> Progress:
        """A progress event of the numbers in `tick`, whose `info` is made from `download`
        when first read."""
        event = cls.__new__(cls)
        object.__setattr__(event, "download_id", tick.id)
        object.__setattr__(event, "tick", tick)
        object.__setattr__(event, "_info", None)
        object.__setattr__(event, "_download", download)
        return event

    @property
    def info(self) -> DownloadInfo:
        """The whole snapshot. For the engine's ticks it is made when first read (and kept),
        from the download as it is then: read by a listener, it is the download at the
        moment of the event; read later, a newer snapshot. Nothing is made for progress that
        nobody reads."""
        info: DownloadInfo | None = self.__dict__["_info"]
        if info is None:
            download: Snapshots = self.__dict__["_download"]
            with download.lock:  # two readers at once make it once
                info = self.__dict__["_info"]
                if info is None:
                    info = download.info()
                    object.__setattr__(self, "_info", info)
        return info


@dataclass(frozen=True)
class StateChanged(Event):
    """The download went from `old` to `new` (see `states`); `info.message` says why when
    there is a reason worth telling."""

    old: State
    new: State
    info: DownloadInfo


@dataclass(frozen=True)
class Paused(Event):
    """The download stopped, its bytes kept on disk: `pause` did it, or a full disk
    (`info.message` says which; a download paused for space resumes once there is room)."""

    info: DownloadInfo


@dataclass(frozen=True)
class Resumed(Event):
    """`resume` put the download back in the queue."""

    info: DownloadInfo


@dataclass(frozen=True)
class Restarted(Event):
    """The download went back to zero; `reason` says why (the remote file changed, ...)."""

    reason: str
    info: DownloadInfo


@dataclass(frozen=True)
class Retrying(Event):
    """A request failed and the download waits `wait` seconds before trying again (the
    server's Retry-After, or backoff): said at once, so a long wait is never silent."""

    reason: str
    wait: float
    attempt: int
    info: DownloadInfo


@dataclass(frozen=True)
class Verified(Event):
    """A finished file was checked again (`verify`); `ok` is False for a mismatch or a size
    that differs."""

    ok: bool
    info: DownloadInfo


@dataclass(frozen=True)
class FormatChecked(Event):
    """A model file's structure was checked before its final rename (see `formats`): `kind`
    is what it was checked as, `message` what was found or, when not `ok`, what is wrong."""

    kind: str
    ok: bool
    message: str
    info: DownloadInfo


@dataclass(frozen=True)
class Completed(Event):
    """The file is at its final name (`info.dest`), its checksums matched; or, with the
    conflict policy skip, the file already there was kept (`info.skipped`)."""

    info: DownloadInfo


@dataclass(frozen=True)
class Failed(Event):
    """The download failed for good, or after its retries; `message` says why."""

    message: str
    info: DownloadInfo


@dataclass(frozen=True)
class Removed(Event):
    """`remove` forgot the download: its id is unknown from now on."""


Listener = Callable[[Event], None]
"""What `DownloadManager.subscribe` takes: called with each event, on an engine thread."""
