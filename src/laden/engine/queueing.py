"""Putting downloads in the queue: one address, or one download per file under a folder address.

The same address to the same place again continues the unfinished download rather than
starting a second one. `adding` checks what is given before anything here runs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..core.checksums import parse_checksum
from ..core.options import DownloadOptions
from ..core.states import State
from ..store.journal import Record
from . import events, reruns
from .adding import (
    build_options,
    listed_target,
    resolve_destination,
    take_credentials,
)

if TYPE_CHECKING:
    from ..sources.base import Source
    from .context import Engine


def add(
    manager: Engine,
    url: str,
    dest: str | None,
    *,
    options: DownloadOptions | None,
    group: str | None,
    start: bool,
    again: bool = False,
    rehash: bool = False,
    option_fields: dict[str, Any],
) -> int:
    url, options = _checked(url, options, option_fields)
    return _queue(manager, url, dest, options, group, start, manager.sources.for_url(url),
                  again=again, rehash=rehash)


def find_finished(
    manager: Engine, url: str, dest: str | None, options: DownloadOptions, *,
    rehash: bool,
) -> reruns.FinishedCopy | None:
    """The finished copy `add` would return for these arguments (see `reruns`)."""
    url, options = _checked(url, options, {})
    folder, filename = _resolve(manager, dest, options)
    found = reruns.find(manager, url, folder, filename, options, rehash=rehash)
    return found if isinstance(found, reruns.FinishedCopy) else None  # a stale copy is fetched


def _queue(
    manager: Engine,
    url: str,
    dest: str | None,
    options: DownloadOptions,
    group: str | None,
    start: bool,
    source: Source,
    *,
    again: bool = False,
    rehash: bool = False,
) -> int:
    """Queue a checked address (see `_checked`), continue its unfinished download, or return
    its finished copy (unless `again`)."""
    folder, filename = _resolve(manager, dest, options)
    queue = manager.queue
    if not again:
        unfinished = queue.unfinished(url, folder, filename)
        # Hashing (rehash, or a checksum given) is done outside the manager's lock.
        copy = None if unfinished else reruns.find(manager, url, folder, filename, options,
                                                   rehash=rehash)
        if isinstance(copy, reruns.Stale):
            # Downloaded again in place of the old copy, as --force would (wget -N does too).
            if options.conflict is None:
                options = dataclasses.replace(options, conflict="overwrite")
            copy = None
        if copy is not None:
            manager.emit(events.AlreadyDownloaded(copy.info.id, copy.checked, copy.hashed,
                                                  copy.info))
            return copy.info.id
    checksums = []
    if options.checksum:
        algorithm, digest = parse_checksum(options.checksum)
        checksums.append({"algorithm": algorithm, "expected": digest, "origin": "you",
                          "actual": None, "verified": None})
    with queue.lock:  # found, or added, and never both by two threads at once
        existing = queue.unfinished(url, folder, filename)
        if existing is not None:
            with existing.lock:
                existing.options = existing.options.merged(options)
                if checksums:
                    existing.record.checksums = checksums + [
                        c for c in existing.record.checksums if c["origin"] != "you"]
            if start:
                manager.resume(existing.id)
            return existing.id
        record = Record(
            url=url, source=source.name, dest_dir=folder, filename=filename,
            state=State.QUEUED.value if start else State.PAUSED.value,
            options=options.to_journal(), checksums=checksums, group=group,
            position=queue.next_position(),
        )
        download = queue.add(record, options)
    manager.emit(events.Added(download.id, download.info()))
    queue.notify()
    return download.id


def add_all(
    manager: Engine,
    url: str,
    dest: str | None,
    *,
    options: DownloadOptions | None,
    group: str | None,
    start: bool,
    again: bool = False,
    rehash: bool = False,
    option_fields: dict[str, Any],
) -> list[int]:
    url, options = _checked(url, options, option_fields)
    source = manager.sources.for_url(url)
    if not source.SUPPORTS_LISTING or not source.is_folder(url, options):
        return [_queue(manager, url, dest, options, group, start, source,  # checked above
                       again=again, rehash=rehash)]
    folder, _ = _resolve(manager, dest if dest is None else dest.rstrip("/") + "/", options)
    # Every name is checked before any download is added: a bad one refuses the listing.
    targets = [(item.url, listed_target(folder, item.relative_path, item.url))
               for item in source.list(url, options)]
    return [manager.add(item_url, target, options=options, group=group, start=start,
                        again=again, rehash=rehash)
            for item_url, target in targets]


def _checked(url: str, options: DownloadOptions | None, option_fields: dict[str, Any]
             ) -> tuple[str, DownloadOptions]:
    """The address checked and its credentials moved into the options (see `adding`)."""
    from ..sources.registry import scheme_of

    scheme_of(url)  # checks the whole address too (`core.addresses.check_address`)
    return take_credentials(url, build_options(options, option_fields))


def _resolve(
    manager: Engine, dest: str | None, options: DownloadOptions
) -> tuple[str, str | None]:
    from ..store import paths

    # Only looked up when needed: platformdirs reads the XDG user-dirs file every time.
    default = manager.config.download_folder or (paths.default_download_dir() if dest is None
                                              else "")
    return resolve_destination(dest, options, default)
