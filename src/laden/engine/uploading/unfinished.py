"""Unfinished uploads at the services: the ones laden began and never committed, and removing
them (aborted at the service, so their parts stop costing storage, then forgotten).

An upload in parts exists at the service from its first request (S3's multipart upload, whose
parts are billed until it is completed or aborted), and only laden's journal knows it is
laden's: these are the journal's uploads with an upload id. What is shown of them never
includes the upload id itself (for some services a session address that grants writing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.states import State
from ...core.urls import strip_credentials

if TYPE_CHECKING:
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
    """Parts the service acknowledged."""
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
        found.append(UnfinishedUpload(
            record.id, strip_credentials(record.url), record.dest or "", record.state,
            len(upload.get("parts") or {}), sum(end - start for start, end in record.done_ranges),
            record.created))
    return found


def abort(manager: Engine, download_id: int) -> UnfinishedUpload | None:
    """Abort the upload's unfinished upload at its service, then forget the upload; returns
    what was aborted (None: it held none, and is forgotten all the same).

    Raises:
        LadenError: the service could not be asked, or refused: the upload is kept, so that
            another try (with credentials, say) can abort it.
    """
    download = manager.queue.get(download_id)
    if download.state.is_active:  # no part may be in flight while its upload is aborted
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
