"""Finished uploads whose local file is still the one sent: what a rerun may keep.

A manifest run again finds the uploads an earlier run finished. One whose local file still
has the pin it was sent with (size, modification time in nanoseconds, inode: the same test
that stops an upload whose file changes) is the same file, so it need not be sent again;
any other is uploaded again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...core.errors import InputError
from ...core.states import State
from .local import Pin, pin

if TYPE_CHECKING:
    from ..download import Download


def unchanged(downloads: Iterable[Download], group: str | None) -> list[Download]:
    """The finished uploads among `downloads` (of `group`, if given) whose local file is
    still as it was pinned."""
    found = []
    for download in downloads:
        record = download.record
        if record.direction != "upload" or download.state is not State.DONE \
                or record.upload is None or not record.dest \
                or (group is not None and record.group != group):
            continue
        try:
            now = pin(record.dest)
        except InputError:  # gone: nothing to keep
            continue
        if Pin.from_journal(record.upload["pinned"]) == now:
            found.append(download)
    return found
