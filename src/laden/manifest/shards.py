"""One manifest, N machines: each copy of `laden run --shard I/N` takes a fixed, disjoint share.

There is no coordinator. Kubernetes (an Indexed Job) or AWS Batch (an array job) runs N copies
with a stable index each and replaces a failed one with a copy of the same index; laden's part is
that every copy computes the same split by itself. An object belongs to the shard
`shard_of(target_key(...), N)`: a hash of where it lands, never of listing order, which can
differ between pods. Every copy lists the folders in full and keeps its own share, so folders are
split object by object, and the N shards together are the manifest exactly.

Uploads, when they come, join through the same two functions: their key is the object's target
path in the bucket.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..core.checksums import parse_checksum
from ..core.errors import InputError, LadenError
from ..core.urls import strip_credentials
from ..engine.verify import hash_file
from .model import Manifest
from .plan import PlannedFile, PlannedItem

INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
"""Where a pod finds its index: a Kubernetes Indexed Job, an AWS Batch array job."""
MAX_SHARDS = 100_000  # Kubernetes allows completions up to 100,000 in an Indexed Job
_SHARD = re.compile(r"(\d{1,6})/(\d{1,6})")


@dataclass(frozen=True)
class Shard:
    index: int
    """0-based, as JOB_COMPLETION_INDEX counts."""
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def chosen(shard: str | None, shards: int | None,
           environ: Mapping[str, str] = os.environ) -> Shard | None:
    """The shard asked for by `--shard I/N`, or by `--shards N` and the job's index variable.

    Raises:
        InputError: a malformed or out-of-range value, or `--shards` with no index to be found.
    """
    if shard is None and shards is None:
        return None
    if shard is not None:
        match = _SHARD.fullmatch(shard.strip())
        if not match:
            raise InputError(f"--shard must look like INDEX/COUNT (such as 0/4), not {shard!r}")
        index, count = int(match[1]), int(match[2])
        if shards is not None and shards != count:
            raise InputError(f"--shard {shard} and --shards {shards} disagree on the count")
    else:
        assert shards is not None
        count = shards
        index = _index_from(environ)
    if not 1 <= count <= MAX_SHARDS:
        raise InputError(f"the shard count must be from 1 to {MAX_SHARDS}, not {count}")
    if not 0 <= index < count:
        raise InputError(f"the shard index must be from 0 to {count - 1}, not {index}")
    return Shard(index, count)


def _index_from(environ: Mapping[str, str]) -> int:
    for name in INDEX_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        if not value.strip().isdigit() or len(value.strip()) > 6:
            raise InputError(f"{name} must be a shard index (0, 1, ...), not {value[:20]!r}")
        return int(value)
    raise InputError("--shards N needs the shard index: give --shard I/N, or run where "
                     f"{' or '.join(INDEX_VARIABLES)} is set (an Indexed Job, an array job)")


def shard_of(key: str, count: int) -> int:
    """The shard that owns `key`: the same in every process and on every machine (Python's
    `hash()` is salted per process, so it is never used for this)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


def target_key(dest: str, url: str, root: str) -> str:
    """What an object is assigned by: its target path, relative to the manifest's root (pods
    may mount the volume at the same place, but a relative root follows their working folder).

    A target that is a folder (the server names the file) is not one object's path: the source
    address, without credentials, tells its objects apart.
    """
    relative = os.path.relpath(dest, root) if _inside(dest, root) else os.path.abspath(dest)
    key = relative.replace(os.sep, "/")
    if dest.endswith(os.sep):
        key = f"{key.rstrip('/')}/ <- {strip_credentials(url)}"
    return key


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), root]) == root


def share(planned: list[PlannedItem], manifest: Manifest, shard: Shard) -> list[PlannedItem]:
    """This shard's part of every item: the same items, each with only the files it owns.

    An item's errors (a folder that cannot be listed) stay with every shard: each of them
    lacks the objects it would have taken from there.
    """
    root = manifest.download_root
    return [replace(entry, files=[f for f in entry.files
                                  if shard_of(target_key(f.dest, f.url, root), shard.count)
                                  == shard.index])
            for entry in planned]


def complete_at_destination(planned: list[PlannedItem], journalled: set[str]) -> int:
    """Take out the files that are already whole at their destination although the journal
    does not know them (a replaced pod whose journal was on its own disk): the manifest's
    checksum, and the size the listing gives. Returns how many were taken out.

    Without a checksum a file of the right size is not trusted: it is downloaded again.
    Files in `journalled` (their destinations) are left to the journal, which already knows
    and costs no hashing.
    """
    taken = 0
    for entry in planned:
        kept: list[PlannedFile] = []
        for planned_file in entry.files:
            if planned_file.dest not in journalled and _whole(planned_file):
                taken += 1
            else:
                kept.append(planned_file)
        entry.files[:] = kept
    return taken


def _whole(planned_file: PlannedFile) -> bool:
    dest, expected = planned_file.dest, planned_file.options.checksum
    if not expected or dest.endswith(os.sep):
        return False
    try:
        if not os.path.isfile(dest) or planned_file.size not in (None, os.path.getsize(dest)):
            return False  # a file target's size is known only by asking the server: the
            # checksum alone decides then
        algorithm, digest = parse_checksum(expected)
        return hash_file(dest, [algorithm]).get(algorithm) == digest
    except (OSError, LadenError):
        return False


def manifest_digest(path: str) -> str:
    """sha256 of the manifest file: shards of different versions of a manifest never add up."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def journalled_destinations(manager: Any, group: str) -> set[str]:
    return {info.dest for info in manager.list() if info.group == group}
