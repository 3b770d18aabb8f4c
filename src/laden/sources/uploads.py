"""What the upload direction asks of a service: the small interface each way's other half.

A service that takes uploads declares an `Uploader` (`core.known_sources`: `uploader`), made
with the service's `Source` so that both directions share its clients and credentials. The
shape is S3's (one request for a small file; for a large one an upload id, numbered parts sent
in any order, a commit), which Azure's staged blocks also fit.
Checksums of parts are CRC32C in base64, as the services write them. Of the whole object a
service keeps either a CRC32C (S3, GCS) or an MD5 (Azure's Content-MD5): its uploader says which
(`whole_checksum`), and the upload direction computes that one of the file. A service that
takes the file in order, as one stream (GCS, FTP), says `in_order = True` and offers
`in_order_uploads`'s methods instead of parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..core.options import DownloadOptions


@dataclass(frozen=True)
class StoredObject:
    """An object as the service has it: what a conflict policy and the check after a commit
    compare."""

    size: int
    crc32c: str | None
    """The whole object's CRC32C in base64, when the service keeps one (None: it does not)."""
    md5: str | None = None
    """The whole object's MD5 in hex, when the service keeps one (Azure's Content-MD5, GCS's
    md5Hash) or computes one (an FTP server's HASH or XMD5)."""


@dataclass(frozen=True)
class SentPart:
    """A part the service acknowledged."""

    number: int
    etag: str
    crc32c: str


class Uploader(Protocol):
    """One service's side of uploads. Every method raises laden's errors (`core.errors`):
    `UploadLost` when the upload id is no longer known, `DestinationExists` when `only_new`
    was asked and the name is taken."""

    min_part: int
    """The smallest part (but the last) the service takes."""
    max_parts: int
    whole_checksum: str
    """What the service keeps of the whole object and is given at the commit: "crc32c" or
    "md5"."""

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        """The object at `url`, or None when there is none."""
    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        """Send a whole small file in one request: it is committed when this returns."""
    def begin(self, url: str, options: DownloadOptions, *, file_tag: str) -> str:
        """Start an upload in parts; returns its id. `file_tag` names the version of the file
        (from its pin): a service whose parts laden names itself (Azure's block ids) names them
        from it, so that a resume finds them and another version's are never mixed in."""
    def send_part(self, url: str, upload_id: str, number: int, body: bytes | bytearray,
                  crc32c: str,
                  options: DownloadOptions, start: int) -> str:
        """Send part `number` (bytes from `start`); returns the service's tag for it."""
    def parts(self, url: str, upload_id: str, options: DownloadOptions) -> dict[int, str]:
        """The parts the service holds for the upload: number -> tag."""
    def complete(self, url: str, upload_id: str, parts: list[SentPart], crc32c: str,
                 options: DownloadOptions, *, only_new: bool, md5: str | None) -> None:
        """Commit the parts, in number order, as one object whose CRC32C is `crc32c` (and
        whose MD5 in hex is `md5`, given when `whole_checksum` is "md5")."""
    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        """Drop an unfinished upload and its parts (one already gone is no error)."""


@dataclass(frozen=True)
class WaitingUpload:
    """An unfinished upload as the service lists it (`ListsUnfinished`)."""

    url: str
    started: float | None
    """When it began (seconds since the epoch), if the service says."""
    upload_id: str
    """To tell laden's own from the others; never shown (for some services it grants
    writing)."""


class ListsUnfinished(Protocol):
    """What an `Uploader` may offer besides: the unfinished uploads in parts the service holds
    under an address (a bucket, or a prefix), whoever began them. `laden list
    --unfinished-uploads --at ADDRESS` asks it where the uploader has it."""

    def unfinished(self, url: str, options: DownloadOptions) -> list[WaitingUpload]: ...
