"""`laden verify` of a finished upload: the local file read again, the object asked for.

The file is pinned again and its CRC32C read whole (a change while it is read is reported, not
compared); the service is asked for the object (`Uploader.stored`), and its size and CRC32C are
compared with the file's. The result says what was compared, with what: a service that keeps
no CRC32C of the object has only its size compared, and the message says so. A mismatch or a
missing object fails the upload (`laden resume` sends it again); a check that could not be
made (the file gone or changing, the service unreachable) leaves it as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...core.errors import InputError, LadenError, LocalFileChanged
from ...core.states import State
from ...core.urls import strip_credentials
from ..checking import VerifyResult
from . import crc32c
from .local import LocalFile, Pin, pin

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ..download import Download

READ_SIZE = 8 * 1024 * 1024


def verify_upload(download: Download, sources: SourceRegistry,
                  verifying: Callable[[], None]) -> VerifyResult:
    """Compare the finished upload's object at the service with its local file as it is now."""
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
    verifying()
    try:
        ours = _checksum(path, now)
    except LocalFileChanged as exc:
        return _failed(path, f"{exc}; verify it again once it is still")
    except LadenError as exc:
        return _failed(path, str(exc))
    pinned = (record.upload or {}).get("pinned")
    since = (" (the local file changed since the upload)"
             if pinned and Pin.from_journal(pinned) != now else "")
    try:
        stored = sources.uploader_for(record.url).stored(record.url, download.options)
    except LadenError as exc:
        return _failed(path, f"could not ask the service for {url}: {exc}")
    mine = f"{now.size} bytes, CRC32C {ours}"
    if stored is None:
        return VerifyResult(False, path, "crc32c", None, ours,
                            f"{url} is not at the service (the local file: {mine}){since}")
    if stored.size != now.size:
        return VerifyResult(False, path, "size", str(stored.size), str(now.size),
                            f"{url} has {stored.size} bytes at the service, the local file "
                            f"{now.size}{since}")
    if stored.crc32c is None:
        return VerifyResult(True, path, None, str(stored.size), str(now.size),
                            f"{url} at the service has the local file's size ({now.size} "
                            "bytes); the service keeps no CRC32C of it, so only the size was "
                            f"compared{since}")
    theirs = f"{crc32c.decoded(stored.crc32c):08x}"
    if theirs != ours:
        return VerifyResult(False, path, "crc32c", theirs, ours,
                            f"{url} at the service has CRC32C {theirs}, the local file {ours} "
                            f"(both {now.size} bytes){since}")
    return VerifyResult(True, path, "crc32c", theirs, ours,
                        f"compared with {url} at the service: size and CRC32C match "
                        f"({mine}){since}")


def _failed(path: str, message: str) -> VerifyResult:
    """Nothing was compared: no verdict on the upload, which stays as it was (a result
    without a path does not count, see `rechecking.verify`)."""
    return VerifyResult(False, "", None, None, None, f"{path}: {message}" if path else message)


def _checksum(path: str, pinned: Pin) -> str:
    """The file's CRC32C in hex, read whole; LocalFileChanged if it changes meanwhile."""
    local = LocalFile(path, pinned)
    try:
        view = memoryview(bytearray(READ_SIZE))
        total = crc32c.of(b"")
        reader = local.open_range(0, None)
        while n := reader.readinto(view):
            total = crc32c.extend(total, view[:n])
        local.check()
    finally:
        local.close()
    return f"{total:08x}"
