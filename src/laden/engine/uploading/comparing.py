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
from typing import TYPE_CHECKING, Any

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


def digests(path: str, pinned: Pin, algorithms: list[str]) -> dict[str, str]:
    """The file's digests of `algorithms` (see `NAMES`) in hex, from one reading;
    LocalFileChanged if it changes meanwhile."""
    crc = crc32c.of(b"") if "crc32c" in algorithms else None
    hashers = {name: hashlib.new(name, usedforsecurity=False)
               for name in ("md5", "sha256") if name in algorithms}
    if "git-sha1" in algorithms:
        hashers["git-sha1"] = hashlib.sha1(b"blob %d\0" % pinned.size, usedforsecurity=False)
    local = LocalFile(path, pinned)
    try:
        view = memoryview(bytearray(READ_SIZE))
        reader = local.open_range(0, None)
        while n := reader.readinto(view):
            if crc is not None:
                crc = crc32c.extend(crc, view[:n])
            for hasher in hashers.values():
                hasher.update(view[:n])
        local.check()
    finally:
        local.close()
    found = {name: hasher.hexdigest() for name, hasher in hashers.items()}
    if crc is not None:
        found["crc32c"] = f"{crc:08x}"
    return found
