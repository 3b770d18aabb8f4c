"""What the engine tells its listeners, as frozen dataclasses.

Listeners are called on engine threads: they must be quick and thread-safe (the TUI posts a
Textual message; the CLI updates a progress bar). Progress is throttled at the source, a few
events per second per download, never one per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.snapshots import DownloadInfo
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


@dataclass(frozen=True)
class Progress(Event):
    """Bytes arrived, or something shown changed (queue place, limit): a few a second per
    download at most, never one per chunk."""

    info: DownloadInfo


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
