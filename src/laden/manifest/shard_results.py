"""What each shard says when it ends, and whether the whole job is complete.

Every shard writes one small JSON file next to the data, in `DOWNLOAD_ROOT/.laden-shards/`,
atomically (a temporary file renamed over the old one), so a reader never sees half of one
and a shard run again replaces its own. `laden run MANIFEST --shards N --status` reads the N
files: a shard is complete only when its file exists, is for this very manifest (its digest)
and for N shards, and says every item succeeded.

The files hold counts, item names and the one-line error messages laden prints: never an
address's credentials, never a secret (the manifest is named by its digest only).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import PERMANENT_EXIT, InputError
from ..core.snapshots import DownloadInfo
from ..core.states import State
from .shards import Shard

FOLDER = ".laden-shards"
MAX_FAILURES = 20  # enough to act on; the shard's own log has every one
MAX_RESULT_BYTES = 1 << 20


@dataclass(frozen=True)
class Failure:
    item: str
    message: str
    permanent: bool


@dataclass
class ShardResult:
    shard: int
    shards: int
    manifest_sha256: str
    state: str
    """complete, failed, or interrupted."""
    exit_code: int
    items: int = 0
    files: int = 0
    done: int = 0
    earlier: int = 0
    """Files an earlier run of this shard finished, or found whole at their destination."""
    bytes: int = 0
    failed: int = 0
    permanent: bool = False
    """A failure that running the shard again cannot fix."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    host: str = ""
    ended: float = 0.0


def failures_of(run: Any, infos: list[DownloadInfo]) -> list[Failure]:
    """Every reason the run's items did not all succeed, and whether trying again can help
    (what the engine journalled for a failed download, what listing or adding said for an
    item); `infos` are the run's downloads as they ended."""
    found = [Failure(entry.item.title, error, entry.permanent)
             for entry in run.planned for error in entry.errors]
    for info in infos:
        if info.state is State.DONE:
            continue
        permanent = info.state is State.FAILED and bool(info.errors) and info.errors[-1].permanent
        found.append(Failure(info.name, info.message or info.state.value, permanent))
    return found


def exit_code(failures: list[Failure], interrupted: bool) -> int:
    if interrupted:
        return 130
    if any(f.permanent for f in failures):
        return PERMANENT_EXIT
    return 1 if failures else 0


def write(root: str, shard: Shard, digest: str, results: list[Any], failures: list[Failure],
          present: int, code: int) -> str:
    """Write this shard's result file; returns its path."""
    state = {0: "complete", 130: "interrupted"}.get(code, "failed")
    result = ShardResult(
        shard=shard.index, shards=shard.count, manifest_sha256=digest, state=state,
        exit_code=code, items=len(results), files=sum(r.files for r in results) + present,
        done=sum(r.done for r in results) + present,
        earlier=sum(r.earlier for r in results) + present,
        bytes=sum(r.bytes for r in results), failed=len(failures),
        permanent=any(f.permanent for f in failures),
        failures=[asdict(f) for f in failures[:MAX_FAILURES]],
        host=socket.gethostname(), ended=time.time())
    folder = os.path.join(root, FOLDER)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, file_name(shard))
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(asdict(result), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename is durable once the folder is
        folder_handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_handle)
        finally:
            os.close(folder_handle)
    return path


def file_name(shard: Shard) -> str:
    return f"shard-{shard.index:05d}-of-{shard.count:05d}.json"


@dataclass(frozen=True)
class ShardStatus:
    index: int
    state: str
    """complete, failed, interrupted, missing, or stale (another manifest's result)."""
    result: ShardResult | None


def read_status(root: str, count: int, digest: str) -> list[ShardStatus]:
    """The state of each of the `count` shards, from their result files."""
    folder = os.path.join(root, FOLDER)
    statuses = []
    for index in range(count):
        path = os.path.join(folder, file_name(Shard(index, count)))
        result = _read(path)
        if result is None:
            statuses.append(ShardStatus(index, "missing", None))
        elif result.manifest_sha256 != digest or (result.shard, result.shards) != (index, count):
            statuses.append(ShardStatus(index, "stale", result))
        else:
            statuses.append(ShardStatus(index, result.state, result))
    return statuses


def _read(path: str) -> ShardResult | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_RESULT_BYTES))
        known = ShardResult.__dataclass_fields__
        return ShardResult(**{k: v for k, v in data.items() if k in known})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"cannot read the shard result {path}: {exc}") from None


def status_code(statuses: list[ShardStatus]) -> int:
    """0: every shard complete; 4: a shard failed for good (its index needs a changed
    manifest, not another try); 1: a shard is missing (not ended yet), stale or failed."""
    if all(s.state == "complete" for s in statuses):
        return 0
    if any(s.state == "failed" and s.result is not None and s.result.permanent
           for s in statuses):
        return PERMANENT_EXIT
    return 1
