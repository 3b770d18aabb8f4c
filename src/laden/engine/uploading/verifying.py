"""`laden verify` of a finished upload: the local file read again, the object asked for.

The file is pinned again, the service is asked for the object (`Uploader.stored`), and the file
is read once for each checksum the service keeps of it (`comparing`: CRC32C, MD5, SHA-256 or
git's blob id; a change while it is read is reported, not compared). The result says what was
compared, with what: a service that keeps no checksum of the object has only its size
compared, and the message says so. A mismatch or a
missing object fails a done upload (`laden resume` sends it again); a check that could not be
made (the file gone or changing, the service unreachable) leaves it as it was. A failed upload
is only reported on, unless it was committed (`committed`) and a checksum matched: then it is
done again (see `settles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ...core.errors import InputError, LadenError, LocalFileChanged
from ...core.states import State
from ...core.urls import strip_credentials
from ..checking import VerifyResult
from . import comparing, given_md5
from .local import Pin, pin

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ...store.records import Record
    from ..download import Download


GIVEN_MD5 = "the MD5 laden stored with the commit (Azure's Content-MD5)"
"""What is compared at a service that keeps the MD5 laden gave it (`given_md5`)."""


def verify_upload(download: Download, sources: SourceRegistry,
                  verifying: Callable[[], None]) -> VerifyResult:
    """Compare the finished upload's object at the service with its local file as it is now."""
    failed = download.state is State.FAILED
    result = _compared(download, sources, verifying)
    if not failed or settles(download.record, result):
        return result
    why = ("it was never committed" if not committed(download.record) else
           "only its size was compared" if result.ok else "")
    if not why:
        return replace(result, settles=False)
    return replace(result, settles=False,
                   message=f"{result.message}; the upload stays failed ({why})")


def committed(record: Record) -> bool:
    """Whether the upload's object was committed: the upload was done once (`finished`, set
    when its commit was acknowledged and checked, or the object found there already), and no
    later attempt is under way at the service (no upload id, no commit asked for): marking it
    done again would orphan that attempt's parts or session."""
    journal = record.upload or {}
    return (record.finished is not None and not journal.get("upload_id")
            and not journal.get("committing"))


def settles(record: Record, result: VerifyResult) -> bool:
    """Whether `result` may set a failed upload's state: only a committed one, and only back to
    done, when a checksum (not the size alone) matched. A failed upload never committed is
    reported on, never changed: an object of the same size (an older one, another client's)
    would make it "done", and `--unfinished-uploads` would then skip its unfinished upload
    (it skips done ones)."""
    return (result.ok and result.algorithm not in (None, "size") and committed(record))


def _compared(download: Download, sources: SourceRegistry,
              verifying: Callable[[], None]) -> VerifyResult:
    record = download.record
    path = record.dest or ""
    url = strip_credentials(record.url)
    if download.state not in (State.DONE, State.FAILED) or not path:
        return _failed(path, f"upload {download.id} is {download.state.value}: nothing was "
                             "committed to verify yet")
    try:
        now = pin(path)
    except InputError:
        return _failed(path, "the local file is gone: deleted or moved since it was uploaded; "
                             "nothing to compare the object with")
    pinned = (record.upload or {}).get("pinned")
    since = (" (the local file changed since the upload)"
             if pinned and Pin.from_journal(pinned) != now else "")
    try:
        uploader = sources.uploader_for(record.url)
        stored = uploader.stored(record.url, download.options)
    except LadenError as exc:
        return _failed(path, f"could not ask the service for {url}: {exc}")
    if stored is None:
        return VerifyResult(False, path, None, None, None,
                            f"{url} is not at the service (the local file: {now.size} "
                            f"bytes){since}")
    if stored.size != now.size:
        return VerifyResult(False, path, "size", str(stored.size), str(now.size),
                            f"{url} has {stored.size} bytes at the service, the local file "
                            f"{now.size}{since}")
    theirs = comparing.kept(stored)
    if not theirs:
        return VerifyResult(True, path, None, str(stored.size), str(now.size),
                            f"{url} at the service has the local file's size ({now.size} "
                            "bytes); the service keeps no checksum of it, so only the size "
                            f"was compared{since}")
    verifying()
    try:
        ours = comparing.digests(path, now, list(theirs))
    except LocalFileChanged as exc:
        return _failed(path, f"{exc}; verify it again once it is still")
    except LadenError as exc:
        return _failed(path, str(exc))
    if not comparing.matches(stored, ours):
        algorithm = comparing.first_difference(stored, ours) or next(iter(theirs))
        digest, name = theirs[algorithm], comparing.NAMES[algorithm]
        return VerifyResult(False, path, algorithm, digest, ours[algorithm],
                            f"{url} at the service has {name} {digest}, the local file "
                            f"{ours[algorithm]} (both {now.size} bytes){since}")
    names = " and ".join(
        GIVEN_MD5 if a == "md5" and given_md5.keeps_given(uploader) else comparing.NAMES[a]
        for a in theirs)
    algorithm = next(iter(theirs))
    shown = ", ".join(f"{comparing.NAMES[a]} {ours[a]}" for a in theirs)
    return VerifyResult(True, path, algorithm, theirs[algorithm], ours[algorithm],
                        f"compared with {url} at the service: size and {names} match "
                        f"({now.size} bytes, {shown}){since}")


def _failed(path: str, message: str) -> VerifyResult:
    """Nothing was compared: no verdict on the upload, which stays as it was (a result
    without a path does not count, see `rechecking.verify`)."""
    return VerifyResult(False, "", None, None, None, f"{path}: {message}" if path else message)
