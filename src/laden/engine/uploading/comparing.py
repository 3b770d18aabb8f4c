"""The checksums a service keeps of an object, and the local file's of the same kinds.

Each service keeps its own kind: S3 and GCS a CRC32C, Azure the Content-MD5 given at the
commit, GCS an MD5 too, the Hugging Face Hub the SHA-256 of a large (LFS) file and git's blob
id of a small one. `laden verify` of a finished upload compares every one the service has, so
it reads the local file once for exactly those (`digests`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...core.errors import Cancelled
from . import crc32c
from .local import LocalFile

if TYPE_CHECKING:
    from .local import Pin

READ_SIZE = 8 * 1024 * 1024
NAMES = {"crc32c": "CRC32C", "md5": "MD5", "sha256": "SHA-256", "git-sha1": "git blob id"}
"""How each algorithm is named to a person."""


def kept(stored: Any) -> dict[str, str]:
    """algorithm -> digest in lowercase hex, for each checksum of the object the service
    keeps (`sources.uploads.StoredObject`, or a whole-file service's `StoredFile`)."""
    found: dict[str, str] = {}
    if value := getattr(stored, "crc32c", None):
        found["crc32c"] = f"{crc32c.decoded(value):08x}"
    if value := getattr(stored, "md5", None):
        found["md5"] = _hex(value)
    if value := getattr(stored, "sha256", None):
        found["sha256"] = value.lower()
    elif value := getattr(stored, "blob_id", None):
        # A large hub file's blob id is its LFS pointer's; only a small file's is of its bytes.
        found["git-sha1"] = value.lower()
    return found


def _hex(digest: str) -> str:
    """An MD5 as services write it, hex or base64, in hex."""
    if len(digest) == 32:
        try:
            bytes.fromhex(digest)
            return digest.lower()
        except ValueError:
            pass
    try:
        return base64.b64decode(digest, validate=True).hex()
    except (binascii.Error, ValueError):
        return digest.lower()


def digests(local_or_path: LocalFile | str, pinned: Pin, algorithms: Iterable[str],
            stop_event: threading.Event | None = None) -> dict[str, str]:
    """The pinned file's digests of `algorithms` (see `NAMES`) in hex, from one reading: the
    one loop that reads a whole local file to hash it (the check after a commit, the conflict
    policy skip, `laden verify`, the hub's SHA-256 and blob id). A `LocalFile` given is read
    and left open; a path is opened and closed here.

    Raises:
        LocalFileChanged, DiskError: the file changed while it was read, or could not be.
        Cancelled: `stop_event` was set.
    """
    wanted = set(algorithms)
    crc = crc32c.of(b"") if "crc32c" in wanted else None
    hashers = {name: hashlib.new(name, usedforsecurity=False)
               for name in ("md5", "sha256") if name in wanted}
    if "git-sha1" in wanted:
        hashers["git-sha1"] = hashlib.sha1(b"blob %d\0" % pinned.size, usedforsecurity=False)
    local = LocalFile(local_or_path, pinned) if isinstance(local_or_path, str) else local_or_path
    try:
        view = memoryview(bytearray(READ_SIZE))
        reader = local.open_range(0, None)
        while n := reader.readinto(view):
            if stop_event is not None and stop_event.is_set():
                raise Cancelled("stopped")
            if crc is not None:
                crc = crc32c.extend(crc, view[:n])
            for hasher in hashers.values():
                hasher.update(view[:n])
        local.check()
    finally:
        if local is not local_or_path:
            local.close()
    found = {name: hasher.hexdigest() for name, hasher in hashers.items()}
    if crc is not None:
        found["crc32c"] = f"{crc:08x}"
    return found


def matches(stored: Any, ours: dict[str, str]) -> bool:
    """Whether the object is the file: every checksum the service keeps of it (`kept`) equals
    the file's in `ours` (`digests` of at least those), and there is one. The sizes are the
    caller's to compare first, before reading the file."""
    theirs = kept(stored)
    return bool(theirs) and all(ours.get(name) == digest for name, digest in theirs.items())


def first_difference(stored: Any, ours: dict[str, str]) -> str | None:
    """The first algorithm whose digests differ (None: they all match)."""
    return next((name for name, digest in kept(stored).items() if ours.get(name) != digest),
                None)
