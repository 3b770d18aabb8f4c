"""What the upload direction asks of a service that takes a file as one stream, in order.

S3's and Azure's parts go in any order over several connections (`uploads.Uploader`). A GCS
resumable session and an FTP `STOR` take the bytes front to back: the service keeps a prefix
of the file, says how long it is, and a resume continues right after it. Such a service's
uploader says so with `in_order = True` and offers the methods below besides `stored`, `put`
and `abort`; the engine then sends over one connection, in order, from the offset the service
reports (`engine.uploading.in_order`).

The upload id (`begin`) is whatever names the unfinished upload at the service: a GCS session
URI (a bearer capability: kept in the journal, never in a message, a log or `--json`) or the
temporary name of an FTP upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .uploads import StoredObject


@dataclass(frozen=True)
class FileChecksums:
    """The whole local file's checksums, base64 as the services write them: given with the
    last bytes so the service can check the object it finalises."""

    size: int
    crc32c: str
    md5: str | None
    """None when the service neither checks nor keeps an MD5 (`takes_md5`): not computed."""


class ChunkWriter(Protocol):
    """Bytes `start` to `end` of the file on their way to the service, written in order."""

    def write(self, data: memoryview) -> None: ...
    def finish(self, whole: FileChecksums | None) -> int:
        """The chunk is written: make the service take it (with `whole` when it is the last)
        and return how many bytes of the file the service now holds."""
    def abort(self) -> None:
        """Drop the chunk unfinished (a failure, a pause); the service keeps what it kept."""


def in_order(uploader: object) -> bool:
    """Whether `uploader` takes the file in order, as one stream."""
    return bool(getattr(uploader, "in_order", False))


class InOrderUploader(Protocol):
    """One in-order service's side of uploads: `stored`, `put` and `abort` as an `Uploader`'s
    (`uploads`), and the methods below instead of its parts. `offset` raises `UploadLost`
    when the upload is gone or cannot be continued (saying why)."""

    in_order: bool
    one_stream: bool
    """True: the rest of the file goes as one chunk (FTP); False: in chunks of the part size,
    each confirmed before the next (GCS)."""
    min_part: int
    """The part size (GCS's chunks) and the largest file sent in one request."""
    conflict_at_begin: bool
    """True: `only_new` is fixed when the upload begins (GCS's `ifGenerationMatch=0` is the
    session's), so an upload added again with another conflict policy needs a new one; False:
    it is decided at the commit (FTP)."""
    max_parts: int

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None: ...
    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None: ...
    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None: ...
    def takes_md5(self, url: str, options: DownloadOptions) -> bool:
        """Whether the service checks or can tell the object's MD5: only then is it computed
        while sending (it costs more than the sending on a fast link)."""
    def begin_in_order(self, url: str, size: int, options: DownloadOptions, *,
                       only_new: bool, file_tag: str) -> str:
        """Start an upload of `size` bytes; returns its id. With `only_new`, the service
        refuses to finish it over an existing object (where it can). `file_tag` names this
        version of the local file (`Pin.tag`): where the id is a name (FTP's temporary file),
        it is in the name, so that another upload to the same target never continues it."""
    def offset(self, url: str, upload_id: str, size: int, options: DownloadOptions) -> int:
        """How many bytes of the file the service holds for the upload."""
    def writer(self, url: str, upload_id: str, start: int, end: int, size: int,
               options: DownloadOptions) -> ChunkWriter:
        """A writer of bytes `start` to `end`; `start` is what `offset` last said."""
    def commit(self, url: str, upload_id: str, size: int, options: DownloadOptions, *,
               only_new: bool) -> None:
        """Give the finished upload of `size` bytes its name, when the last chunk did not
        already."""
