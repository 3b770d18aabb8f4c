"""Asking the server about the file, and taking its answer.

The probe's facts (size, validators, published checksums) are compared with what the journal
recorded: a resume only goes on when they describe the same version of the file.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ...core.errors import Cancelled, Permanent, Retryable
from ...core.urls import strip_credentials
from .destination import choose_destination, conflict_policy
from .restarts import reset

if TYPE_CHECKING:
    from ...sources.base import RemoteInfo
    from ..seam import Run
    from .files import DownloadFiles


def probe(run: Run, files: DownloadFiles) -> RemoteInfo:
    attempt = 0
    while True:
        try:
            return files.probe_again()
        except Permanent as exc:
            # 401 and 403 are sometimes passing (a token being rotated, a CDN warming up):
            # one more try before calling them final.
            if exc.status not in (401, 403) or attempt > 0:
                missing = run.download.options.missing_headers
                if exc.status in (401, 403) and missing:
                    raise Permanent(
                        f"{exc}; the header{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} given in an earlier session "
                        f"{'are' if len(missing) > 1 else 'is'} not kept (it may be a secret): "
                        "run the same laden get command again to give it", status=exc.status,
                    ) from None
                raise
            attempt += 1
            run.download.add_error(str(exc))
            if not run.backoff(attempt, exc):
                raise
        except Retryable as exc:
            attempt += 1
            run.download.add_error(str(exc))
            if not run.backoff(attempt, exc):
                if run.stop_event.is_set():
                    raise Cancelled("stopped") from None
                raise


def adopt(run: Run, files: DownloadFiles, remote: RemoteInfo) -> None:
    """Take the probe's facts; restart when they describe another version of the file."""
    from ...sources.base import RemoteInfo

    download = run.download
    record = download.record
    if record.extra.get("etag_is_a_token"):
        # See restarts.etag_is_a_token: this server's ETags say nothing, so they are not pinned.
        remote = files.remote = dataclasses.replace(remote, etag=None, version=None)
    if record.extra.get("one_stream") and remote.supports_ranges:
        # This server answered some ranges with the whole file (see restarts.judge_change): a
        # probe that shows ranges again must not undo that.
        remote = files.remote = dataclasses.replace(remote, supports_ranges=False)
    if record.done_ranges:
        before = RemoteInfo(
            url=record.url, final_url=record.final_url or record.url, size=record.size,
            supports_ranges=bool(record.supports_ranges), etag=record.etag,
            last_modified=record.last_modified, version=record.version,
        )
        if not record.supports_ranges or not remote.supports_ranges:
            reset(run, files, "the server cannot resume this file, so it starts again")
        elif not before.same_version(remote):
            if before.size == remote.size and not (
                before.version or before.last_modified
            ) and any(c.get("origin") == "you" for c in record.checksums):
                pass  # no validator to compare, but your checksum will catch a mix-up
            else:
                reset(run, files, before.describe_change(remote))
    with download.lock:
        # A redirect to http://user:password@host/ keeps its password in memory only.
        record.final_url = strip_credentials(remote.final_url)
        record.size = remote.size
        record.etag = remote.etag
        record.last_modified = remote.last_modified
        record.version = remote.version
        record.supports_ranges = remote.supports_ranges
        record.extra.update(remote.extra)
        mine = [c for c in record.checksums if c.get("origin") == "you"]
        published = [dataclasses.asdict(c) for c in remote.checksums]
        record.checksums = mine + (published if run.config.verify else [])
        if record.dest is None:
            _choose_destination(run, remote)
    run.save()


def _choose_destination(run: Run, remote: RemoteInfo) -> None:
    download = run.download
    with run.choosing_name() as taken:
        choose_destination(download.record, download.options, remote,
                           conflict_policy(download, run.config), taken)
