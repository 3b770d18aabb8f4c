"""`laden run MANIFEST --shard I/N` and `--shards N --status`: the command line's side of
sharding (see `manifest.shards` for how objects are assigned, `manifest.shard_results` for the
result files).

Exit codes of a shard: 0 its share is complete, 1 something failed that another try may fix,
4 something failed for good (not found, forbidden, checksum mismatch), 2 bad input, 3 another
laden owns the state folder, 130 interrupted (SIGTERM: paused and saved). `--status` exits 0
when every shard is complete, 4 when one failed for good, 1 otherwise (missing, failed, stale).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..core.errors import InputError
from ..core.printable import printable
from ..core.units import format_size
from ..manifest import shard_results, shards
from ..manifest.shards import Shard


def chosen(args: argparse.Namespace) -> Shard | None:
    """The shard this run is; for --status, any shard of the job (only the count matters)."""
    if not args.status:
        return shards.chosen(args.shard, args.shards)
    if args.dry_run:
        raise InputError("--status reads the shards' results; it cannot go with --dry-run")
    if args.shards is None and args.shard is None:
        raise InputError("--status needs the number of shards: --shards N")
    # Where --status runs there is no index to find: the job as a whole is asked about.
    return shards.chosen(args.shard, args.shards, {shards.INDEX_VARIABLES[0]: "0"})


def plan(planned: list[Any], manifest: Any, shard: Shard | None,
         manager: Any = None) -> tuple[list[Any], int]:
    """This shard's share of the plan, without the files already whole at their destination
    that the journal does not know; and how many of those there were."""
    if shard is None:
        return planned, 0
    planned = shards.share(planned, manifest, shard)
    if manager is None:
        return planned, 0
    present = shards.complete_at_destination(
        planned, shards.journalled_destinations(manager, manifest.group))
    if present:
        print(f"laden: shard {shard}: {present} files already complete at their destination "
              "(size and checksum), not fetched again", file=sys.stderr)
    return planned, present


def ended(manifest: Any, shard: Shard | None, results: list[Any], failures: list[Any],
          present: int, interrupted: bool) -> int:
    """The run's exit code; a shard also writes its result file."""
    code = shard_results.exit_code(failures, interrupted)
    if shard is not None:
        shard_results.write(manifest.download_root, shard, shards.manifest_digest(manifest.path),
                            results, failures, present, code)
    return code


def print_status(args: argparse.Namespace, shard: Shard | None) -> int:
    from ..manifest.loading import read_document

    assert shard is not None
    path = os.path.abspath(args.manifest)
    # Only the root is needed: --status runs where the secrets may not be mounted.
    root = read_document(path).get("download_root") or os.getcwd()
    if not isinstance(root, str):
        raise InputError(f"{path}: download_root must be a folder's path")
    root = os.path.abspath(os.path.expanduser(root))
    statuses = shard_results.read_status(root, shard.count, shards.manifest_digest(path))
    code = shard_results.status_code(statuses)
    if args.json:
        for s in statuses:
            _json({"event": "shard", "shard": s.index, "state": s.state,
                   "result": None if s.result is None else vars(s.result)})
        _json({"event": "job", "complete": code == 0, "shards": shard.count,
               "exit_code": code})
        return code
    for s in statuses:
        if args.quiet and s.state == "complete":
            continue
        print(printable(_status_line(s, shard.count)))
    complete = sum(1 for s in statuses if s.state == "complete")
    if code == 0:
        print(f"job complete: {complete} of {shard.count} shards")
    else:
        others = [f"{state} {_indexes(statuses, state)}"
                  for state in ("failed", "interrupted", "missing", "stale")
                  if _indexes(statuses, state)]
        print(f"job incomplete: {complete} of {shard.count} shards complete; "
              + "; ".join(others))
    return code


def _status_line(status: shard_results.ShardStatus, count: int) -> str:
    result = status.result
    head = f"shard {status.index}/{count}: {status.state}"
    if result is None:
        return head + " (no result file yet)"
    if status.state == "stale":
        return head + " (its result is for another manifest or shard count; run it again)"
    text = (f"{head}, {result.done}/{result.files} files, {format_size(result.bytes)}"
            f", exit {result.exit_code}")
    if result.failures:
        first = result.failures[0]
        kind = "permanent" if first.get("permanent") else "may pass on another try"
        text += f"; {result.failed} failed, first: {first.get('item')}: " \
                f"{first.get('message')} ({kind})"
    return text


def _indexes(statuses: list[shard_results.ShardStatus], state: str) -> str:
    return ",".join(str(s.index) for s in statuses if s.state == state)


def _json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()
