"""The check after a commit to a service that keeps the whole object's MD5 as laden gave it.

Azure stores the Content-MD5 given with the commit (Put Block List, Put Blob) and never computes
it, so comparing it with laden's MD5 of the file is a comparison of laden with itself: it cannot
fail. What Azure did check is each block, by its MD5, as it was staged (and a small file's one
request, by its Content-MD5, on arrival). So after a commit of blocks the blob's committed
block list is read and compared with the parts the journal holds: the same block ids, in order,
with the same sizes (said in the log: the journal's checksums are of the whole object). The
whole object's MD5 is recorded as laden's, not verified by anyone; `laden verify` compares the
local file with it later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...core.errors import ChecksumMismatch

if TYPE_CHECKING:
    from ...core.options import DownloadOptions
    from ...sources.uploads import Uploader
    from .state import UploadState

log = logging.getLogger("laden.transfer")


def keeps_given(uploader: Uploader) -> bool:
    """Whether the service keeps the whole object's MD5 as given (it offers its committed
    parts to check instead: `committed_parts`)."""
    return callable(getattr(uploader, "committed_parts", None))


def checked(upload: UploadState, md5: str, options: DownloadOptions) -> list[dict[str, Any]]:
    """The checksum entries to record of the committed object.

    Raises:
        ChecksumMismatch: the committed blocks are not the parts laden sent.
    """
    entries: list[dict[str, Any]] = [{"algorithm": "md5", "expected": md5, "origin": "laden",
                                      "actual": None, "verified": None}]
    if upload.single:
        return entries  # one request, whose MD5 Azure checked on arrival
    committed: list[str] = upload.uploader.committed_parts(  # type: ignore[attr-defined]
        upload.url, options)
    sent = [tag for _number, (tag, _crc) in sorted(upload.acknowledged().items())]
    if committed == sent:
        log.info("upload %s: the blob holds laden's %s, in order (Azure checked each by its "
                 "MD5 as it was staged)", upload.download.id, _shown(sent))
    else:
        numbers = {tag: str(n) for n, tag in enumerate(sent, 1)}
        found = ", ".join(numbers.get(tag, "another") for tag in committed) or "none"
        raise ChecksumMismatch("block list", f"laden's blocks 1 to {len(sent)} in order",
                               f"blocks {found}", source="the blob after the commit")
    return entries


def _shown(tags: list[str]) -> str:
    """Blocks (id:size each) as a person reads them: how many, and how many bytes."""
    size = sum(int(tag.rpartition(":")[2] or 0) for tag in tags)
    return f"{len(tags)} blocks, {size} bytes"
