"""What one upload knows across attempts and sessions, kept in `Record.upload`.

The record holds the local file's pin, the part size, the service's upload id and the parts the
service acknowledged (number -> ETag and CRC32C). Each acknowledgement is journalled as it
arrives, so after `kill -9` only the parts in flight are sent again. The upload id of most
services names an upload and grants nothing, but a GCS resumable session's URI is a credential:
whoever holds it may write the object until the session ends (a week). It is kept all the same,
since a resume needs it, in the journal alone, which is the owner's only (0600); it never
reaches a message, a log or `--json`, and an upload laden stops continuing is cancelled at the
service rather than forgotten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import crc32c
from .local import LocalFile, Pin

if TYPE_CHECKING:
    from ...sources.uploads import SentPart, Uploader
    from ..seam import Run


def fresh(pinned: Pin, part_size: int, conflict: str) -> dict[str, Any]:
    """A new upload's `Record.upload`."""
    return {"pinned": pinned.to_journal(), "part_size": part_size, "conflict": conflict,
            "upload_id": None, "parts": {}}


class UploadState:
    """One attempt's view of the upload: the journalled state, the uploader and the file."""

    def __init__(self, run: Run, uploader: Uploader, local: LocalFile) -> None:
        self.run = run
        self.download = run.download
        self.uploader = uploader
        self.local = local
        record = self.download.record
        self.url = record.url
        self.size = local.size
        self.part_size = int(self.journal["part_size"])
        self.single = self.size <= self.part_size
        """One request: PutObject; its sending is the commit."""
        self.committed = False

    @property
    def journal(self) -> dict[str, Any]:
        upload = self.download.record.upload
        assert upload is not None
        return upload

    @property
    def only_new(self) -> bool:
        return self.journal.get("conflict") == "fail"

    @property
    def count(self) -> int:
        """How many parts the file has."""
        return max(1, -(-self.size // self.part_size))

    def part_at(self, offset: int) -> int:
        return offset // self.part_size + 1

    def part_range(self, number: int) -> tuple[int, int]:
        start = (number - 1) * self.part_size
        return start, min(start + self.part_size, self.size)

    def acknowledged(self) -> dict[int, tuple[str, str]]:
        with self.download.lock:
            return {int(n): (etag, crc) for n, (etag, crc) in self.journal["parts"].items()}

    def done_ranges(self) -> list[tuple[int, int]]:
        return [self.part_range(n) for n in sorted(self.acknowledged())]

    # -- called by the sink, on the connections' threads -------------------------------------

    def send(self, number: int, body: bytes | bytearray, crc: int) -> None:
        """Send a whole part (or the whole small file); it counts once the service said so."""
        options = self.download.options
        self.local.check()  # a file changed since its first part must not go on
        if self.single:
            self.before_commit(crc)
            self.uploader.put(self.url, body, crc32c.encoded(crc), options,
                              only_new=self.only_new)
            self.committed = True
            return
        start, _end = self.part_range(number)
        upload_id = self.journal["upload_id"]
        etag = self.uploader.send_part(self.url, upload_id, number, body, crc32c.encoded(crc),
                                       options, start)
        with self.download.lock:
            if self.journal.get("upload_id") != upload_id:
                return  # the upload started again meanwhile: this part was of the old one
            self.journal["parts"][str(number)] = (etag, crc32c.encoded(crc))
            self.download.record.done_ranges = self.done_ranges()
        self.run.save()

    # -- the commit --------------------------------------------------------------------------

    def whole_checksum(self) -> int:
        """The file's CRC32C, combined from its parts'."""
        acknowledged = self.acknowledged()
        total = crc32c.of(b"")
        for number in range(1, self.count + 1):
            start, end = self.part_range(number)
            total = crc32c.combine(total, crc32c.decoded(acknowledged[number][1]), end - start)
        return total

    def before_commit(self, crc: int) -> None:
        """Journal that a commit is being asked for, with the file's checksum: after a crash
        from here on, the next run first looks whether the object is there already."""
        self.local.check()
        with self.download.lock:
            self.journal["committing"] = True
            self.journal["checksum"] = crc32c.encoded(crc)
        self.run.save()

    def parts_to_commit(self) -> list[SentPart]:
        from ...sources.uploads import SentPart

        return [SentPart(number, etag, crc)
                for number, (etag, crc) in sorted(self.acknowledged().items())]

    def forget_upload(self) -> None:
        """Start again from the first byte: no upload id, no parts."""
        with self.download.lock:
            journal = self.journal
            journal["upload_id"] = None
            journal["parts"] = {}
            journal.pop("committing", None)
            journal.pop("checksum", None)
            self.download.record.done_ranges = []
