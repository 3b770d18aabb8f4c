"""Read-only snapshots of a download, handed to the CLI, the TUI and Python callers.

They are plain frozen dataclasses built under the download's lock, so a reader never sees a
half-updated download and never holds a lock while drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .states import State


@dataclass(frozen=True)
class ChecksumInfo:
    algorithm: str
    expected: str
    """Hex digest (or the service's own form, such as an S3 multipart ETag)."""
    origin: str
    """Who promised it: "you", "Repr-Digest", "Content-MD5", "S3 ChecksumSHA256", ..."""
    actual: str | None = None
    verified: bool | None = None
    """None: not checked yet; True: matched; False: mismatch."""


@dataclass(frozen=True)
class ConnectionInfo:
    """One live connection of a download, for the per-connection table and segment map."""

    number: int
    start: int
    end: int
    position: int
    bytes: int
    speed: float
    retries: int
    last_status: str


@dataclass(frozen=True)
class ErrorRecord:
    time: float
    message: str
    permanent: bool = False
    """Trying again cannot help (`errors.is_permanent`): not found, forbidden, mismatch."""


@dataclass(frozen=True)
class DownloadInfo:
    id: int
    url: str
    """The address as given, with any password removed."""
    final_url: str | None
    source: str
    """http, ftp, s3, gs, az, hf."""
    dest: str
    """Full path of the finished file."""
    state: State
    size: int | None
    done: int
    speed: float
    eta: float | None
    done_ranges: tuple[tuple[int, int], ...] = ()
    """Byte ranges [start, end) that are on disk."""
    connections: tuple[ConnectionInfo, ...] = ()
    checksums: tuple[ChecksumInfo, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    resumable: bool = True
    retries: int = 0
    errors: tuple[ErrorRecord, ...] = ()
    message: str = ""
    """The latest thing worth telling the user: why it failed, why it restarted."""
    options: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    finished: float | None = None
    position: float = 0.0
    """Place in the queue (smaller starts first)."""
    speed_history: tuple[float, ...] = ()
    """Bytes per second, one sample a second, oldest first (the last five minutes)."""
    group: str | None = None
    retry_at: float | None = None
    """While waiting to try again: when (time.time()); `message` says why."""
    """The manifest or batch this download belongs to."""
    supports_ranges: bool | None = None
    """Whether the server answers byte ranges (None: not asked yet). Without them a paused
    download starts again from zero."""
    skipped: bool = False
    """Done without downloading: the file was already there and the conflict policy is skip
    (`dest` is that file, which laden did not write)."""

    @property
    def name(self) -> str:
        import os.path

        return os.path.basename(self.dest)

    @property
    def fraction(self) -> float | None:
        if not self.size:
            return 1.0 if self.state is State.DONE else None
        return min(1.0, self.done / self.size)
