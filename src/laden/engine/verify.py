"""Checksums: parsing what people and servers write, and hashing files fast.

Hashing reads 4 MiB at a time; hashlib releases the GIL for buffers that large, so a hash pass
runs on its own core beside the downloads.

Besides plain hash functions, two digests that services publish need a little more:
- `git-sha1`, the id git gives a blob (Hugging Face's ETag of small files): SHA-1 over
  `blob <size>\0` and the content, so the hasher must know the size first;
- `s3-etag-<part size>`, the ETag of an S3 multipart upload: the MD5 of the parts' MD5s and
  `-<number of parts>`. The part size is part of the name because the digest depends on it.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..core.checksums import S3_ETAG_NAME, algorithm_name
from ..core.errors import Cancelled, ChecksumMismatch

READ_SIZE = 4 * 1024 * 1024


class Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str, size: int | None = None) -> Hasher:
    """A hasher for `algorithm`; `size` (the whole input's length) is needed for git-sha1."""
    algorithm = algorithm_name(algorithm)
    if algorithm == "git-sha1":
        if size is None:
            raise ValueError("a git blob id needs the size of the data before the data")
        return hashlib.sha1(b"blob %d\0" % size)
    s3_etag = S3_ETAG_NAME.fullmatch(algorithm)
    if s3_etag:
        return _S3MultipartEtag(int(s3_etag.group(1)))
    if algorithm == "crc32c":
        import google_crc32c

        return _Crc32c(google_crc32c.Checksum())
    if algorithm == "crc32":
        return _Crc32()
    return hashlib.new(algorithm)


def hash_file(
    path: str | os.PathLike[str],
    algorithms: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, str]:
    """Hex digests of the whole file for each algorithm, in one read pass."""
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    done = 0
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        hashers = {algorithm_name(a): new_hasher(a, size) for a in algorithms}
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled("verification stopped")
            n = handle.readinto(buffer)
            if not n:
                break
            chunk = view[:n]
            for hasher in hashers.values():
                hasher.update(chunk)
            done += n
            if progress is not None:
                progress(done)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


class _Crc32c:
    def __init__(self, checksum: Any) -> None:
        self._checksum = checksum

    def update(self, data: Any) -> None:
        self._checksum.update(bytes(data))

    def hexdigest(self) -> str:
        return self._checksum.digest().hex()


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: Any) -> None:
        self._value = binascii.crc32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value & 0xFFFFFFFF:08x}"


class _S3MultipartEtag:
    """`md5(md5(part 1) + md5(part 2) + ...)-N` over parts of a fixed size (the last shorter)."""

    def __init__(self, part_size: int) -> None:
        self._part_size = part_size
        self._part = hashlib.md5()
        self._in_part = 0
        self._digests: list[bytes] = []

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(len(view), self._part_size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self._part_size:
                self._digests.append(self._part.digest())
                self._part, self._in_part = hashlib.md5(), 0

    def hexdigest(self) -> str:
        digests = list(self._digests)
        if self._in_part or not digests:
            digests.append(self._part.digest())
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def checksums_to_check(checksums: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Yours when you gave one; otherwise the strongest the service published."""
    mine = [c for c in checksums if c.get("origin") == "you"]
    if mine:
        algorithms = {c["algorithm"] for c in mine}
        return [c for c in checksums if c["algorithm"] in algorithms]
    order = ["sha256", "sha512", "sha384", "sha1", "md5", "crc32c"]
    for algorithm in order:
        chosen = [c for c in checksums if c["algorithm"] == algorithm]
        if chosen:
            return chosen
    return checksums[:1]


def record_digests(
    wanted: list[dict[str, Any]], digests: dict[str, str]
) -> ChecksumMismatch | None:
    """Note each checksum's computed value and verdict; the first mismatch, if any."""
    mismatch = None
    for checksum in wanted:
        checksum["actual"] = digests[checksum["algorithm"]]
        checksum["verified"] = checksum["actual"] == checksum["expected"]
        if not checksum["verified"] and mismatch is None:
            mismatch = ChecksumMismatch(checksum["algorithm"], checksum["expected"],
                                        checksum["actual"], source=checksum["origin"])
    return mismatch
