"""`laden verify`: checking a finished file again, long after its download."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.checksums import parse_checksum
from ..core.errors import ChecksumMismatch
from ..core.states import State
from . import pieces
from .download import Download
from .verify import hash_file, new_hasher


@dataclass(frozen=True)
class VerifyResult:
    """What `DownloadManager.verify` found."""

    ok: bool
    """The file is whole: its size, checksum and structure are what they should be."""
    path: str
    """The file checked."""
    algorithm: str | None
    """The checksum's algorithm (None: no checksum was computed)."""
    expected: str | None
    """The digest it was checked against (or the expected size, when the size differs)."""
    actual: str | None
    """The file's digest (or its size)."""
    message: str
    """One line for a person: what matched, or what differs."""
    damaged: tuple[tuple[int, int], ...] = ()
    """Byte ranges [start, end) whose bytes do not match the piece hashes recorded when the
    file was downloaded (see `pieces`); `repair` fetches them again."""
    settles: bool = field(default=True, kw_only=True)
    """Whether the result may set the transfer's state (False: a report only, see
    `uploading.verifying.settles`); keyword-only, so `RepairResult`'s fields keep their
    places."""


def recheck(
    download: Download,
    algorithm: str | None,
    expected: str | None,
    verifying: Callable[[], None],
) -> VerifyResult:
    """Compare the file with `expected`, else with the checksums the journal holds, else record
    a sha256 so the next check has something to compare with. `verifying` is called before the
    (possibly long) hashing starts."""
    record = download.record
    path = record.dest or ""
    if download.state not in (State.DONE, State.FAILED) or not path:
        return VerifyResult(False, path, None, None, None,
                            f"download {download.id} is {download.state.value}: there is no "
                            "finished file to verify yet")
    if not os.path.isfile(path):
        return VerifyResult(False, path, None, None, None,
                            "the file is gone: deleted or moved since it was downloaded")
    size = os.path.getsize(path)
    if record.size is not None and size != record.size:
        return VerifyResult(False, path, None, str(record.size), str(size),
                            f"it has {size} bytes, the download had {record.size}")
    wanted: list[dict[str, Any]]
    if expected:
        written = expected if ":" in expected or "=" in expected else (
            f"{algorithm or 'sha256'}:{expected}")
        algo, digest = parse_checksum(written)
        wanted = [{"algorithm": algo, "expected": digest, "origin": "you"}]
    else:
        wanted = [c for c in record.checksums if c.get("expected")
                  and (algorithm is None or c["algorithm"] == algorithm)]
    algo = wanted[0]["algorithm"] if wanted else (algorithm or "sha256")
    verifying()
    hashes, _ = pieces.of_record(record)
    if hashes is None:
        actual, damaged = hash_file(path, [algo])[algo], []
    else:
        actual, damaged = _with_pieces(path, algo, hashes, size)
    if damaged:  # never recorded as the file's checksum, nor called a match
        assert hashes is not None
        for checksum in wanted:
            if checksum["algorithm"] == algo:
                checksum["actual"], checksum["verified"] = actual, actual == checksum["expected"]
        mismatch = f"{algo} mismatch ({wanted[0]['origin']}); " if wanted else ""
        return VerifyResult(False, path, algo, wanted[0]["expected"] if wanted else None, actual,
                            mismatch + pieces.describe(damaged, hashes, size),
                            tuple(pieces.ranges_of(damaged, hashes, size)))
    if not wanted:
        record.checksums.append({"algorithm": algo, "expected": actual, "origin": "laden",
                                 "actual": actual, "verified": True})
        return VerifyResult(True, path, algo, None, actual,
                            f"no checksum was known; recorded {algo} {actual} for next time")
    target = wanted[0]
    ok = target["expected"] == actual
    for checksum in record.checksums:
        if checksum["algorithm"] == algo and checksum["expected"] == target["expected"]:
            checksum["actual"], checksum["verified"] = actual, ok
    message = f"{algo} matches ({target['origin']})" if ok else str(
        ChecksumMismatch(algo, target["expected"], actual, source=target["origin"]))
    return VerifyResult(ok, path, algo, target["expected"], actual, message)


def _with_pieces(path: str, algorithm: str, hashes: pieces.PieceHashes,
                 size: int) -> tuple[str, list[int]]:
    """The file's `algorithm` digest and its damaged pieces, in one read pass."""
    whole = new_hasher(algorithm, size=size)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        damaged = pieces.check(fd, hashes, size, [whole])
    finally:
        os.close(fd)
    return whole.hexdigest(), damaged
