"""Checking a finished file again, and repairing it, at your request.

The download shows as verifying meanwhile; an upload is compared with its object at the
service (`uploading.verifying`). A verdict that counts (see `verify`'s `record`)
leaves it done or failed; any other check, or one that raises, puts it back as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.states import State
from . import events
from .checking import VerifyResult, recheck
from .format_check import after_recheck
from .repair import RepairResult, repair_file
from .uploading.verifying import verify_upload

if TYPE_CHECKING:
    from .context import Engine
    from .download import Download


def verify(
    manager: Engine, download_id: int, algorithm: str | None, expected: str | None,
    *, record: bool | None,
) -> VerifyResult:
    """`DownloadManager.verify`: see there."""
    download = manager.queue.get(download_id)
    upload = download.record.direction == "upload"
    if upload and expected is not None:
        raise InputError("an upload is verified against its object at the service; a checksum "
                         "to compare with applies to downloads")
    record = expected is None if record is None else record
    before = _before(download)
    try:
        if upload:  # the object at the service against the local file
            result = verify_upload(download, manager.sources, _verifying(manager, download))
        else:
            result = recheck(download, algorithm, expected, _verifying(manager, download))
            result = after_recheck(download, result)  # a model file's structure too
    except BaseException:
        _settle(manager, download, *before)
        raise
    checked = bool(result.path) and os.path.isfile(result.path)
    if checked and record and result.settles:
        return _verified(manager, download, result)
    _settle(manager, download, *before)  # back from verifying, as it was
    if checked:
        manager.emit(events.Verified(download.id, result.ok, download.info()))
    return result


def repair(manager: Engine, download_id: int) -> RepairResult:
    """`DownloadManager.repair`: see there."""
    download = manager.queue.get(download_id)
    before = _before(download)
    try:
        result = repair_file(download, manager.sources, _verifying(manager, download))
    except BaseException:
        _settle(manager, download, *before)
        raise
    if result.checked:
        _verified(manager, download, result)
    else:
        _settle(manager, download, *before)
    return result


def _before(download: Download) -> tuple[State, str]:
    with download.lock:
        return download.state, download.record.message


def _verifying(manager: Engine, download: Download) -> Callable[[], None]:
    """What `recheck` and `repair_file` call before they start hashing."""

    def verifying() -> None:
        old = download.set_state(State.VERIFYING)
        manager.emit(events.StateChanged(download.id, old, State.VERIFYING, download.info()))

    return verifying


def _verified(manager: Engine, download: Download, result: VerifyResult
              ) -> VerifyResult:
    new = State.DONE if result.ok else State.FAILED
    with download.lock:
        if not result.ok:
            download.add_error(result.message)
    _settle(manager, download, new, result.message if not result.ok else "")
    manager.emit(events.Verified(download.id, result.ok, download.info()))
    return result


def _settle(manager: Engine, download: Download, state: State, message: str) -> None:
    """End a verification in `state` (the one before it, when the result changes nothing)."""
    with download.lock:
        if download.state is state:
            return
        old = download.set_state(state, message)
    manager.save(download)
    manager.emit(events.StateChanged(download.id, old, state, download.info()))
