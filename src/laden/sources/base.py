"""The small interface every protocol implements.

A source turns an address into facts about the remote file (`probe`) and into byte streams for
ranges of it (`open_range`). The engine does the rest: planning segments, writing the partial
file, retrying, verifying. A new protocol is a new module here and its entry in
`core.known_sources` (its name, schemes and options).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

from ..core.known_sources import KnownSource
from ..core.options import DownloadOptions
from ..core.snapshots import ChecksumInfo

FILTER_SETTINGS = ("glob", "include", "exclude")
"""The settings that choose files under a folder address (see `listing`)."""
PROBE_BODY = 1_000_000
"""A file this small arrives whole in the probe's answer (HTTP, S3): one request instead of
two, which is most of the cost of a small file. Larger files close the probe's answer after
the headers. Not a round number, so the HTTP probe's Range never equals a segment's (splits
fall on 64 KiB)."""

@dataclass(frozen=True)
class RemoteInfo:
    """What a probe learned about the remote file."""

    url: str
    final_url: str
    size: int | None
    supports_ranges: bool
    etag: str | None = None
    last_modified: str | None = None
    filename: str | None = None
    """Name suggested by the server (Content-Disposition) or the address; not yet sanitised."""
    checksums: tuple[ChecksumInfo, ...] = ()
    """Checksums the service publishes for the whole file."""
    version: str | None = None
    """The validator pinned on every later read (ETag, generation, commit)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Source-specific facts worth keeping in the journal (no secrets)."""
    body: bytes | None = field(default=None, repr=False)
    """The whole file, when the probe's answer already carried it (small files): the engine
    writes it instead of asking again. Never journalled."""

    def carrying(self, body: bytes | None) -> RemoteInfo:
        """This with the whole file attached, when `body` is all of it (None, or a short or
        long read, leaves the bytes to the connections, which retry)."""
        if body is None or len(body) != self.size:
            return self
        return replace(self, body=body)

    def same_version(self, other: RemoteInfo) -> bool:
        """True when `other` is certainly the same version of the file as this one."""
        if self.size != other.size:
            return False
        if self.version and other.version:
            return self.version == other.version
        if self.last_modified and other.last_modified:
            return self.last_modified == other.last_modified
        return False

    def describe_change(self, after: RemoteInfo) -> str:
        """Why `after` is not the version this describes, in words for the user."""
        if self.size != after.size:
            return f"the remote file changed size ({self.size} -> {after.size} bytes)"
        if self.version and after.version and self.version != after.version:
            return f"the remote file changed (ETag {self.version} -> {after.version})"
        if self.last_modified != after.last_modified:
            return (f"the remote file changed (Last-Modified {self.last_modified} -> "
                    f"{after.last_modified})")
        return "the server gives no ETag or Last-Modified to prove the file is unchanged"


@dataclass(frozen=True)
class ListedObject:
    """One file found under a folder or prefix address."""

    url: str
    relative_path: str
    size: int | None = None


class RangeReader(Protocol):
    """An open stream of one byte range."""

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` as far as the range allows; 0 means the range is finished."""
        ...

    def close(self) -> None: ...


# A RangeReader may also offer `can_splice: bool` and
# `splice_into(sink, offset, count) -> int`: moving bytes into the partial file (`sink`, with
# `write` and `splice_in`) without a trip through Python; see `http_reader`.


class Source(ABC):
    """One protocol. An instance is shared by all downloads of a manager and is thread-safe."""

    known: ClassVar[KnownSource]
    """Its entry in `core.known_sources`: where `name` and `schemes` come from."""
    name: ClassVar[str]
    """Short name shown in the queue: http, ftp, s3, gs, az, hf."""
    schemes: ClassVar[tuple[str, ...]]
    SUPPORTS_LISTING: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = cls.__dict__.get("known")
        if known is not None:
            cls.name, cls.schemes = known.name, known.schemes

    @abstractmethod
    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """Find size, range support, validators and published checksums."""

    @abstractmethod
    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        """Open bytes [start, end) of the version in `remote` (end None: to the end of the file).

        Raises RemoteChanged when the remote file is no longer that version.
        """

    def current_version(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """What the remote file is now (size and validators), as cheaply as the service allows:
        a rerun asks this before it keeps a file downloaded earlier. The probe by default (a
        metadata request for the object stores, SIZE and MDTM for FTP)."""
        return self.probe(url, options)

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        """True when the address names a folder or prefix to expand with `list`."""
        return False

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        """The files under a folder or prefix address (only when SUPPORTS_LISTING)."""
        raise NotImplementedError(f"{self.name} addresses cannot name folders")

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release connections and clients."""


class ReadAdapter:
    """A RangeReader over anything with `read(n)` (SDK streams that lack readinto)."""

    def __init__(self, stream: Any, close: Any = None) -> None:
        self._stream = stream
        self._close = close or getattr(stream, "close", None)

    def readinto(self, buffer: memoryview) -> int:
        want = len(buffer)
        filled = 0
        while filled < want:
            chunk = self._stream.read(want - filled)
            if not chunk:
                break
            buffer[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled

    def close(self) -> None:
        if self._close is not None:
            self._close()
