"""Finished copies: the same address to the same place again keeps the file already saved.

A download manager's rerun is idempotent. When the journal finished this address into this
folder (under this name, if one is given), the file is still there at its size, and the remote
file is still the version that was downloaded (one metadata request: a HEAD for HTTP), `add`
returns that download instead of fetching a second copy (`name.1.bin`). A checksum given with
the rerun, or `rehash`, is checked by hashing the file; otherwise only its size is, and
`FinishedCopy.checked` says so. A remote that changed since is downloaded again in place
(`Stale`); one that cannot be asked keeps the file, and the note says so. `again=True`
(`--force`) skips the question.

Files laden skipped (`--conflict skip`) are not copies: laden never wrote them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.checksums import parse_checksum
from ..core.errors import LadenError, UnknownDownload
from ..core.snapshots import DownloadInfo
from ..core.states import State
from .verify import hash_file

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from ..store.journal import Record
    from .context import Engine


@dataclass(frozen=True)
class FinishedCopy:
    """A file an earlier download saved, found unchanged on disk."""

    info: DownloadInfo
    hashed: str | None = None
    """The algorithm the file was hashed with just now; None when only its size was checked."""
    note: str = ""
    """Why it was not hashed, when that is worth saying (no checksum is known)."""

    remote: str = ""
    """What asking the remote showed ("the remote is unchanged", or why it could not be asked)."""

    @property
    def checked(self) -> str:
        """What was checked, in the user's words."""
        if self.hashed:
            local = f"size and {self.hashed} checked now"
        else:
            local = "size checked, not hashed again" + (f": {self.note}" if self.note else "")
        return f"{local}; {self.remote}" if self.remote else local


@dataclass(frozen=True)
class Stale:
    """A file an earlier download saved, whose remote file has changed since."""

    info: DownloadInfo
    reason: str


def find(
    manager: Engine,
    url: str,
    folder: str,
    filename: str | None,
    options: DownloadOptions,
    *,
    rehash: bool = False,
) -> FinishedCopy | Stale | None:
    """The newest finished copy of `url` in `folder` (named `filename`, if given), or None.

    `url` and `folder` are as `add` settles them (credentials out, folder absolute).
    """
    candidates = manager.queue.records_at(url, folder)
    for record in sorted(candidates, key=lambda r: r.finished or 0.0, reverse=True):
        if not _same_file(record, filename):
            continue
        copy = _check(record, options, rehash)
        if copy is None:
            continue
        try:
            info = manager.get(record.id)
        except UnknownDownload:
            continue  # removed since the index was read
        changed, remote = _remote_change(manager, record, options)
        if changed is not None:
            return Stale(info, changed)
        return FinishedCopy(info, *copy, remote=remote)
    return None


def _remote_change(manager: Engine, record: Record, options: DownloadOptions
                   ) -> tuple[str | None, str]:
    """(why the remote file is not the version downloaded, or None; what was found)."""
    from ..sources.versions import Validators, difference

    try:
        now = manager.sources.for_url(record.url).current_version(record.url, options)
    except LadenError as exc:
        return None, f"the remote could not be asked ({exc})"
    before = Validators(size=record.size, etag=record.etag, version=record.version,
                        modified=record.last_modified)
    after = Validators(size=now.size, etag=now.etag, version=now.version,
                       modified=now.last_modified)
    reason = difference(before, after)
    if reason is not None:
        return f"the remote file changed since it was downloaded ({reason})", ""
    if not (before.etag or before.version or before.modified):
        return None, "the remote has the same size (it gives no ETag or date to compare)"
    return None, "the remote is unchanged"


def _same_file(record: Record, filename: str | None) -> bool:
    if record.state != State.DONE.value or not record.dest or record.extra.get("skipped"):
        return False
    if filename is not None and os.path.basename(record.dest) != filename:
        return False
    try:
        size = os.path.getsize(record.dest) if os.path.isfile(record.dest) else None
    except OSError:
        return False
    return size is not None and (record.size is None or size == record.size)


def _check(record: Record, options: DownloadOptions, rehash: bool
           ) -> tuple[str | None, str] | None:
    """None when the file is not the one recorded (a checksum differs); else (the algorithm
    it was hashed with now, or None when only its size was checked, and a note saying why)."""
    known = [c for c in record.checksums if c.get("expected")]
    if options.checksum:
        algorithm, digest = parse_checksum(options.checksum)
        proven = any(c["algorithm"] == algorithm and c["expected"] == digest
                     and c.get("verified") for c in known)
        if proven and not rehash:
            return None, f"its {algorithm} matched when it was downloaded"
        wanted = [(algorithm, digest)]
    elif rehash:
        if not known:
            return None, "no checksum is known for it"
        wanted = [(known[0]["algorithm"], known[0]["expected"])]
    else:
        return None, ""
    algorithm, digest = wanted[0]
    try:
        actual = hash_file(record.dest or "", [algorithm])
    except OSError:
        return None
    if next(iter(actual.values())) != digest:
        return None
    return algorithm, ""
