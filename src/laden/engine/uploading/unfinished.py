"""Unfinished uploads at the services: the ones laden began and never committed, and removing
them (aborted at the service, so their parts stop costing storage, then forgotten); and, where
the service can list them, the others it holds under an address.

An upload in parts exists at the service from its first request (S3's multipart upload, whose
parts are billed until it is completed or aborted), and only laden's journal knows it is
laden's: these are the journal's uploads with an upload id. What is shown of them never
includes the upload id itself (for some services a session address that grants writing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.errors import InputError
from ...core.states import State
from ...core.urls import strip_credentials

if TYPE_CHECKING:
    from ...core.options import DownloadOptions
    from ...sources.registry import SourceRegistry
    from ...sources.uploads import WaitingUpload
    from ...store.records import Record
    from ..context import Engine


@dataclass(frozen=True)
class UnfinishedUpload:
    """An upload laden began at a service and has not committed."""

    id: int
    url: str
    """Where it goes."""
    local: str
    """The local file it sends."""
    state: str
    """Its state in the journal: paused, failed, interrupted (queued or running when laden
    stopped), ..."""
    parts: int
    """Parts the service acknowledged (for an upload sent in order, GCS's or FTP's, the
    part-size pieces of what it holds, the last perhaps short)."""
    sent: int
    """Bytes of them."""
    started: float


def unfinished_uploads(records: Iterable[Record]) -> list[UnfinishedUpload]:
    """The uploads of `records` that hold an unfinished upload at their service."""
    found = []
    for record in records:
        upload = record.upload or {}
        if record.direction != "upload" or not upload.get("upload_id") \
                or record.state == State.DONE.value:
            continue
        parts = upload.get("parts") or {}
        if parts:
            counted, sent = len(parts), _stored_bytes(upload, parts)
        else:  # sent in order (GCS, FTP): the prefix the service confirmed, in part sizes
            sent = sum(end - start for start, end in record.done_ranges)
            counted = -(-sent // max(1, int(upload["part_size"])))
        found.append(UnfinishedUpload(
            record.id, strip_credentials(record.url), record.dest or "", record.state,
            counted, sent, record.created))
    return found


def _stored_bytes(upload: dict[str, Any], parts: dict[str, Any]) -> int:
    """Bytes of the acknowledged parts, from their numbers (the record's done ranges are
    cleared when an upload stops for a changed file, its parts are not). An upload sent in
    order has no parts: its done ranges are the prefix the service holds."""
    size = int(upload["pinned"]["size"])
    part_size = int(upload["part_size"])
    return sum(max(0, min(int(n) * part_size, size) - (int(n) - 1) * part_size)
               for n in parts)


def abort(manager: Engine, download_id: int) -> UnfinishedUpload | None:
    """Abort the upload's unfinished upload at its service, then forget the upload; returns
    what was aborted (None: it held none, and is forgotten all the same).

    Raises:
        LadenError: the service could not be asked, or refused: the upload is kept, so that
            another try (with credentials, say) can abort it.
    """
    download = manager.queue.get(download_id)
    if download.state is State.QUEUED or download.state.is_active:
        # No part may be in flight, nor the upload start again, while it is aborted.
        manager.pause(download_id)
        manager.wait(download_id, timeout=30)
    record = download.record
    with download.lock:
        found = unfinished_uploads([record])
    if found:
        uploader = manager.sources.uploader_for(record.url)
        assert record.upload is not None
        uploader.abort(record.url, record.upload["upload_id"], download.options)
        with download.lock:
            record.upload["upload_id"] = None
            record.upload["parts"] = {}
    manager.remove(download_id)
    return found[0] if found else None


def at_service(sources: SourceRegistry, url: str, options: DownloadOptions,
               records: Iterable[Record]) -> list[WaitingUpload]:
    """The unfinished uploads the service holds under `url` that none of `records` began:
    another tool's, or ones laden forgot (an abort that failed, a journal lost).

    Raises:
        InputError: the service cannot list them (or laden cannot upload there).
        LadenError: the service could not be asked.
    """
    uploader = sources.uploader_for(url)
    lister = getattr(uploader, "unfinished", None)
    if lister is None:
        raise InputError(f"laden cannot list the unfinished uploads at {strip_credentials(url)}")
    known = {(r.upload or {}).get("upload_id") for r in records} - {None}
    waiting: list[WaitingUpload] = lister(url, options)
    return [w for w in waiting if w.upload_id not in known]
