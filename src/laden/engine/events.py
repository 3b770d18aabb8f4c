"""What the engine tells its listeners, as frozen dataclasses.

Listeners are called on engine threads: they must be quick and thread-safe (the TUI posts a
Textual message; the CLI updates a progress bar). Progress is throttled at the source, a few
events per second per download, never one per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .info import DownloadInfo
from .states import State


@dataclass(frozen=True)
class Event:
    download_id: int


@dataclass(frozen=True)
class Added(Event):
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
    info: DownloadInfo


@dataclass(frozen=True)
class Progress(Event):
    info: DownloadInfo


@dataclass(frozen=True)
class StateChanged(Event):
    old: State
    new: State
    info: DownloadInfo


@dataclass(frozen=True)
class Paused(Event):
    info: DownloadInfo


@dataclass(frozen=True)
class Resumed(Event):
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
    ok: bool
    info: DownloadInfo


@dataclass(frozen=True)
class Completed(Event):
    info: DownloadInfo


@dataclass(frozen=True)
class Failed(Event):
    message: str
    info: DownloadInfo


@dataclass(frozen=True)
class Removed(Event):
    pass


Listener = Callable[[Event], None]
