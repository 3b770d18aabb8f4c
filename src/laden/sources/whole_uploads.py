"""What the upload direction asks of a service that takes a file whole: the Hugging Face Hub.

Some services do not take numbered parts from the client: the hub takes a file through its own
flow (ask which files are large, send large ones to its storage, then one commit naming them),
run by the service's SDK. Such an uploader says `whole_file = True`, and the engine hands it the
file at once (`engine.uploading.whole_file`) instead of sending parts over several connections.
It still declares `min_part` and `max_parts` as one part of any size (what `Uploader` asks),
so the queue treats the file as one part.

The checksum is the file's SHA-256, which such a service keeps (the LFS object id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from ..core.options import DownloadOptions


@dataclass(frozen=True)
class StoredFile:
    """A file as the service has it, at one revision."""

    size: int
    sha256: str | None
    """Its SHA-256 in hex, when the service keeps one (an LFS file's object id)."""
    blob_id: str | None
    """Its git blob id (sha1 in hex): of the content for a small file, of the LFS pointer for
    a large one."""


class WholeFileUploader(Protocol):
    """One service's side of whole-file uploads. Every method raises laden's errors
    (`core.errors`): `DestinationExists` when `only_new` was asked and the name is taken."""

    whole_file: bool
    """True: the engine sends the file through `send_file`, not in parts."""
    min_part: int
    max_parts: int

    def stored(self, url: str, options: DownloadOptions, *,
               revision: str | None = None) -> StoredFile | None:
        """The file at `url` (at `revision`, else the address's), or None when there is none."""
    def send_file(self, url: str, body: BinaryIO, size: int, sha256: str,
                  options: DownloadOptions, *, only_new: bool,
                  before_commit: Callable[[], None]) -> str:
        """Send `body` (`size` bytes whose SHA-256 is `sha256`) and commit it at `url`;
        returns the revision that holds it. Content the service holds already is not sent
        again. `before_commit` is called once the content is sent, just before the commit
        is asked for (it raises to stop the commit)."""
