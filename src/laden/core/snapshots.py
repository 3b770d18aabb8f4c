"""Read-only snapshots of a download, handed to the CLI, the TUI and Python callers.

They are plain frozen dataclasses built under the download's lock, so a reader never sees a
half-updated download and never holds a lock while drawing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .states import State


@dataclass(frozen=True)
class FormatReport:
    """The verdict of one model-file check."""

    kind: str
    """What the file was checked as: "safetensors", "GGUF", "PyTorch checkpoint (zip)", ..."""
    ok: bool
    detail: str
    """What was found ("12 tensors, header 1,204 bytes"), or what is wrong, in one line."""

    def message(self, name: str) -> str:
        """One line for a person: "model.safetensors: tensor 'w' ends at byte ..."."""
        if self.ok:
            return f"{name}: {self.kind}, {self.detail}"
        return f"{name}: {self.detail}"

    def to_journal(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_journal(cls, data: object) -> FormatReport | None:
        """The report a journal record kept; None for anything else (records are untrusted)."""
        if (isinstance(data, dict) and isinstance(data.get("kind"), str)
                and isinstance(data.get("ok"), bool) and isinstance(data.get("detail"), str)):
            return cls(data["kind"], data["ok"], data["detail"])
        return None


@dataclass(frozen=True)
class ChecksumInfo:
    """One checksum a download is checked against, and what the check found."""

    algorithm: str
    """sha256, md5, crc32c, ... (the names `--checksum` takes)."""
    expected: str
    """Hex digest (or the service's own form, such as an S3 multipart ETag)."""
    origin: str
    """Who promised it: "you", "Repr-Digest", "Content-MD5", "S3 ChecksumSHA256", ..."""
    actual: str | None = None
    """The digest of the bytes on disk, once computed."""
    verified: bool | None = None
    """None: not checked yet; True: matched; False: mismatch."""


@dataclass(frozen=True)
class ConnectionInfo:
    """One live connection of a download, for the per-connection table and segment map."""

    number: int
    start: int
    """First byte of the range this connection works on."""
    end: int
    """End of that range (exclusive)."""
    position: int
    """The next byte it will write."""
    bytes: int
    """Bytes it has received."""
    speed: float
    """Bytes per second."""
    retries: int
    last_status: str
    """The server's latest answer on it (an HTTP status, ...)."""


@dataclass(frozen=True)
class ErrorRecord:
    """An error a download met, kept in its history (`DownloadInfo.errors`)."""

    time: float
    """When (time.time())."""
    message: str
    permanent: bool = False
    """Trying again cannot help (`errors.is_permanent`): not found, forbidden, mismatch."""


@dataclass(frozen=True)
class DownloadInfo:
    """A download as it was at one moment: what `get`, `wait` and `list` return and every
    event carries. Frozen: it never changes under the reader."""

    id: int
    """The number `add` returned; it stays the same across sessions."""
    url: str
    """The address as given, with any password removed."""
    final_url: str | None
    """Where redirects led, when they did."""
    source: str
    """http, ftp, s3, gs, az, hf."""
    dest: str
    """Full path of the finished file."""
    state: State
    """Where the download is (see `states.State`)."""
    size: int | None
    """Bytes in the whole file (None: the server has not said)."""
    done: int
    """Bytes on disk."""
    speed: float
    """Bytes per second now."""
    eta: float | None
    """Seconds left at the current speed (None: not known)."""
    done_ranges: tuple[tuple[int, int], ...] = ()
    """Byte ranges [start, end) that are on disk."""
    connections: tuple[ConnectionInfo, ...] = ()
    """Its live connections, while it runs."""
    checksums: tuple[ChecksumInfo, ...] = ()
    """Every checksum it is checked against, with the verdicts so far."""
    etag: str | None = None
    """The remote file's version: a resume only continues the same one."""
    last_modified: str | None = None
    """The remote file's Last-Modified: the version mark when there is no ETag."""
    resumable: bool = True
    """False when a pause would start the download again from zero (no byte ranges, or no
    way to tell the remote file is unchanged)."""
    retries: int = 0
    """Times the whole download was tried again (each connection counts its own)."""
    errors: tuple[ErrorRecord, ...] = ()
    """The errors it met, oldest first."""
    message: str = ""
    """The latest thing worth telling the user: why it failed, why it restarted."""
    options: dict[str, Any] = field(default_factory=dict)
    """Its `DownloadOptions` as the journal keeps them: never a secret."""
    created: float = 0.0
    """When it was added (time.time())."""
    finished: float | None = None
    """When it was done (time.time())."""
    position: float = 0.0
    """Place in the queue (smaller starts first)."""
    speed_history: tuple[float, ...] = ()
    """Bytes per second, one sample a second, oldest first (the last five minutes)."""
    group: str | None = None
    """The manifest or batch this download belongs to."""
    retry_at: float | None = None
    """While waiting to try again: when (time.time()); `message` says why."""
    supports_ranges: bool | None = None
    """Whether the server answers byte ranges (None: not asked yet). Without them a paused
    download starts again from zero."""
    skipped: bool = False
    """Done without downloading: the file was already there and the conflict policy is skip
    (`dest` is that file, which laden did not write)."""
    format_check: FormatReport | None = None
    """The verdict of the model-file check (see `formats`); None when the file was not
    checked (not a model file, the check turned off, or not finished yet)."""
    direction: str = "download"
    """"download" (`url` fetched into `dest`) or "upload" (the local file `dest` sent to
    `url`)."""
    sequence: int = 0
    """Orders the snapshots of one download: of two, the one with the larger number is the
    newer, however late it arrives (events come from several threads). 0: not made by the
    engine."""

    @property
    def name(self) -> str:
        """The finished file's name, without its folder."""
        import os.path

        return os.path.basename(self.dest)

    @property
    def fraction(self) -> float | None:
        """How much is done, from 0.0 to 1.0 (None: the size is not known yet)."""
        if not self.size:
            return 1.0 if self.state is State.DONE else None
        return min(1.0, self.done / self.size)


@dataclass(frozen=True)
class Tick:
    """What changes while a download runs, at one moment: the numbers a progress event
    carries, without the rest of a snapshot (its address, options, checksums, ...).

    Its fields are the `DownloadInfo` fields of the same names. `applied_to` makes a whole
    snapshot of it and an earlier one, so a face keeps one snapshot per download and never
    asks the manager for another.
    """

    id: int
    sequence: int
    """As `DownloadInfo.sequence`: a tick older than the snapshot shown is stale."""
    state: State
    size: int | None
    done: int
    speed: float
    eta: float | None
    done_ranges: tuple[tuple[int, int], ...]
    connections: tuple[ConnectionInfo, ...]
    speed_history: tuple[float, ...]
    retries: int
    retry_at: float | None
    message: str
    errors: tuple[ErrorRecord, ...]
    resumable: bool
    position: float

    @classmethod
    def of(cls, info: DownloadInfo) -> Tick:
        """The moving part of a whole snapshot."""
        return cls(**{name: getattr(info, name) for name in _MOVING})

    def applied_to(self, info: DownloadInfo) -> DownloadInfo:
        """`info`, an earlier snapshot of the same download, with these numbers."""
        return dataclasses.replace(info, **{name: getattr(self, name) for name in _MOVING})


_MOVING = tuple(f.name for f in dataclasses.fields(Tick))
