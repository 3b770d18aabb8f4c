"""A download as the journal keeps it, and the checks every row read from the journal passes.

Every row is read as untrusted input: its JSON must have the shape of a `Record` and make sense
(a known state, ranges inside the file, options a download can be made with). The shape is a
msgspec schema, so a value of the wrong type is named by its path, never repeated in full.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict
from urllib.parse import urlsplit

import msgspec

from ..core.checksums import algorithm_name
from ..core.options import DownloadOptions
from ..core.states import State


@dataclass
class Record:
    """One download as the journal keeps it. Never holds credentials."""

    url: str
    source: str
    dest_dir: str
    state: str
    filename: str | None = None
    dest: str | None = None
    size: int | None = None
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    version: str | None = None
    supports_ranges: bool | None = None
    done_ranges: list[tuple[int, int]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    checksums: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    retries: int = 0
    position: float = 0.0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    flushed_ranges: list[tuple[int, int]] = field(default_factory=list)
    """Ranges last forced to disk: all that survives a power cut."""
    boot_id: str | None = None
    """The kernel boot during which `done_ranges` were written (see `trusted_ranges`)."""
    pieces: dict[str, Any] | None = None
    """The finished file's piece hashes (`engine.pieces.PieceHashes.to_journal`); None when it
    was journalled by a laden that did not record them."""
    direction: str = "download"
    """Which way the bytes go: "download" (`url` to `dest`) or "upload" (`dest` to `url`)."""
    upload: dict[str, Any] | None = None
    """An upload's own state (see `_Upload`): the local file as pinned when it started, the
    part size, the service's upload id and the parts it acknowledged. No credential but one a
    resume cannot do without: a GCS session URI, which lets its holder write the object for a
    week, kept in this owner-only journal and nowhere else."""
    id: int = 0

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy was a sixth of the CPU per small file, and the
        # values are plain JSON already (the caller holds the download's lock).
        data = dict(vars(self))
        data.pop("id")
        data.pop("done_ranges")
        if data["upload"] is None:  # a download's row stays as it was: its writes are many
            del data["upload"], data["direction"]
        return encode_json(data)

    @classmethod
    def from_row(cls, row_id: int, data: str, done: str) -> Record:
        """The record of one journal row, read as untrusted input: the file may have been
        edited, damaged or written by anything. Keys it does not know are ignored, so a
        record of a newer laden still reads.

        Raises:
            ValueError: one short line saying what is wrong, never the value in full.
        """
        values = _decode(data, _Stored, "data: ")
        ranges = _decode(done, _Ranges, "done_ranges: ")
        record = cls(**values)
        record.id = row_id
        record.done_ranges = ranges
        _check(record)
        return record


def encode_json(value: Any) -> str:
    """`value` as compact JSON text: msgspec's encoder, an eighth of json.dumps's CPU, for the
    journal's writes (two or three per small file). json.dumps takes over where msgspec
    cannot: a folder whose name is not UTF-8 (Python holds its bytes as lone surrogates, which
    json.dumps escapes and reads back as they were) or a str or int subclass."""
    try:
        return _ENCODER.encode(value).decode()
    except (UnicodeEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":"))


_ENCODER = msgspec.json.Encoder()
_MAX_OFFSET = 2**63 - 1
"""The largest file offset (and size) SQLite, `os.pwrite` and `os.truncate` all accept."""
MAX_NUMBER = 1e18
"""Positions and times beyond this are not laden's (a time of 1e18 is 30 billion years away)."""
_Offset = Annotated[int, msgspec.Meta(ge=0, le=_MAX_OFFSET)]
_Range = tuple[_Offset, _Offset]
_Ranges = list[_Range]
"""Made once: msgspec caches what it learns of a type by the type object."""
# The bounds keep out inf and nan, which sort and format as nothing else does.
_Number = Annotated[float, msgspec.Meta(ge=-MAX_NUMBER, le=MAX_NUMBER)]
_STATES = frozenset(state.value for state in State)


class _Checksum(TypedDict):
    """One entry of `Record.checksums`, as `ChecksumInfo(**entry)` needs it."""

    algorithm: str
    expected: str
    origin: str
    actual: NotRequired[str | None]
    verified: NotRequired[bool | None]


class _Error(TypedDict):
    """One entry of `Record.errors`."""

    time: _Number
    message: str


class _Pieces(TypedDict):
    """`Record.pieces`. Whether the digests fit the file's size is asked when they are used
    (`engine.pieces.of_record`): hashes that do not fit cost the repair, not the record."""

    algorithm: Annotated[str, msgspec.Meta(max_length=40)]
    piece_size: Annotated[int, msgspec.Meta(ge=1 << 16, le=1 << 40)]
    """64 KiB to 1 TiB: laden writes 4 MiB."""
    digests: Annotated[str, msgspec.Meta(max_length=1 << 40)]


class _Pinned(TypedDict):
    """The local file an upload reads, as it was when the upload started."""

    size: _Offset
    mtime_ns: int
    inode: int


class _Upload(TypedDict, total=False):
    """`Record.upload`: what a resume needs to send only the parts the service lacks."""

    pinned: Required[_Pinned]
    part_size: Required[Annotated[int, msgspec.Meta(ge=1, le=_MAX_OFFSET)]]
    upload_id: str | None
    """The service's name of the unfinished upload (S3's UploadId, a GCS resumable session's
    URI, an FTP upload's temporary name); None before it began. A session URI lets whoever
    holds it write the object: it is kept here, in the owner-only journal, and nowhere else."""
    parts: dict[str, tuple[str, str]]
    """Part number -> (the service's ETag, the part's CRC32C in base64), once acknowledged."""
    checksum: str | None
    """The whole file's CRC32C in base64, once known."""
    committing: bool
    """A commit was asked for and its answer not recorded yet: the next run first looks
    whether the object is there already."""
    conflict: Literal["overwrite", "skip", "fail"]
    """What to do when the remote name is taken (`core.upload_policies.CONFLICTS`)."""
    session_only_new: bool
    """Whether the unfinished upload was begun refusing to replace (the conflict policy
    fail), where the service fixes that when it begins (a GCS session's ifGenerationMatch=0):
    an upload added again with another policy begins anew."""
    on_change: Literal["stop", "restart"]
    """What to do when the local file changes before the commit (`engine.uploading.changes`);
    missing: stop."""
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    """A whole-file upload's SHA-256 of the file as pinned (hashed once per version)."""
    revision: Annotated[str, msgspec.Meta(max_length=256)]
    """The commit that holds the uploaded file, where the service makes commits."""


class _Stored(TypedDict, total=False):
    """The shape of a record's JSON: every field of `Record` but `id` and `done_ranges` (which
    have columns of their own), typed as tightly as JSON allows. A TypedDict, so that the
    defaults stay in `Record` alone: what is missing takes them."""

    url: Required[str]
    source: Required[str]
    dest_dir: Required[str]
    state: Required[str]
    filename: str | None
    dest: str | None
    size: _Offset | None
    final_url: str | None
    etag: str | None
    last_modified: str | None
    version: str | None
    supports_ranges: bool | None
    options: dict[str, Any]
    checksums: list[_Checksum]
    errors: list[_Error]
    message: str
    retries: Annotated[int, msgspec.Meta(ge=0, le=_MAX_OFFSET)]
    position: _Number
    created: _Number
    finished: _Number | None
    extra: dict[str, Any]
    group: str | None
    flushed_ranges: _Ranges
    boot_id: str | None
    pieces: _Pieces | None
    direction: Literal["download", "upload"]
    upload: _Upload | None


def _decode(text: str, shape: Any, column: str) -> Any:
    """`text` as JSON converted to `shape`, or a ValueError of one short line."""
    try:
        return msgspec.convert(json.loads(text), type=shape, strict=True)
    except (ValueError, TypeError, RecursionError) as exc:
        # ValidationError is a ValueError and names the path ($.size), not the value.
        raise ValueError(column + cut(str(exc))) from None


def _check(record: Record) -> None:
    """What the shape cannot say: a state laden has, ranges inside the file, an address that
    parses, checksums laden can compute and options a download can be made with."""
    if record.state not in _STATES:
        raise ValueError(f"unknown state {cut(record.state)!r}")
    for name in ("done_ranges", "flushed_ranges"):
        for start, end in getattr(record, name):
            if start >= end or (record.size is not None and end > record.size):
                of = "unknown size" if record.size is None else f"{record.size} bytes"
                raise ValueError(f"{name}: {start}-{end} is not a range in a file of {of}")
    try:
        urlsplit(record.url)
        for checksum in record.checksums:
            algorithm_name(checksum["algorithm"])
    except ValueError as exc:  # InputError is one
        raise ValueError(cut(str(exc))) from None
    if not record.options:  # most downloads keep none
        return
    try:
        # The engine makes DownloadOptions of these for every download it holds: a bad value
        # found there would stop every command, found here it costs this record alone.
        msgspec.convert(record.options, type=DownloadOptions, strict=True)
    except ValueError as exc:
        raise ValueError("options: " + cut(str(exc))) from None


def cut(text: str, limit: int = 120) -> str:
    """`text` short enough for one line of the log: a hostile value can be megabytes."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def boot_id() -> str | None:
    """This boot of the machine (Linux); None where the system does not say."""
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                _BOOT_ID = handle.read().strip()
        except OSError:
            _BOOT_ID = ""
    return _BOOT_ID or None


_BOOT_ID: str | None = None


def trusted_ranges(record: Record) -> list[tuple[int, int]]:
    """The ranges a resume may trust. Written bytes outlive a crash or `kill -9` of laden in the
    page cache, but not a power cut or an OS crash: after a reboot only flushed ones count."""
    current = boot_id()
    if current is not None and record.boot_id == current:
        return record.done_ranges
    return [tuple(r) for r in record.flushed_ranges]  # type: ignore[misc]
