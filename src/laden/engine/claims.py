"""Which file names the unfinished downloads hold, so that two downloads never choose one name.

A download's name is settled when its probe answers, on its own transfer thread. Choosing a
free name and holding it is one step under one lock (`choosing`): two files called `data.bin`
probed at the same moment get `data.bin` and `data.1.bin`, never both `data.bin` and one shared
partial file.

The index maps a name to the downloads that were given it. It may hold stale entries (a
download renamed, finished or removed); a lookup checks each holder as it is now, so a stale
entry costs a comparison and is dropped. It must never miss one: every download enters the
manager through `note` (`Queue.keep`), and every name is given inside `choosing`.
Before this index each new name was a pass over every download, quadratic over a list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ..core.states import State
from .download import Download


class Claims:
    def __init__(self, downloads: Mapping[int, Download]) -> None:
        # A leaf lock: nothing else is taken while it is held. Transfers take it while they
        # hold their download's lock, and the queue's lock is taken the other way round.
        self._lock = threading.Lock()
        self._holders: dict[str, set[int]] = {}
        self._downloads = downloads  # the manager's own mapping, read as it is now

    def note(self, download: Download) -> None:
        """A download entering the manager: the name it already has is held from now on."""
        with self._lock:
            self._hold(download)

    @contextmanager
    def choosing(self, download: Download) -> Iterator[_Taken]:
        """Settle `download.record.dest` inside the block; `taken` answers which names other
        unfinished downloads hold. The name the block leaves is held before the lock is let go,
        even when the block raises (a skipped download keeps its name)."""
        with self._lock:
            try:
                yield _Taken(self, download.record.id)
            finally:
                self._hold(download)

    def _hold(self, download: Download) -> None:
        """The download's name, if it has one, is held by it. The caller holds `_lock`."""
        if download.record.dest:
            self._holders.setdefault(download.record.dest, set()).add(download.record.id)

    def held_by_another(self, name: str, download_id: int) -> bool:
        """Whether another unfinished download holds `name`. The caller holds `_lock` (only
        `_Taken` asks, inside `choosing`)."""
        holders = self._holders.get(name)
        if not holders:
            return False
        for holder_id in list(holders):
            holder = self._downloads.get(holder_id)
            if holder is None or holder.record.dest != name:
                holders.discard(holder_id)  # removed or renamed since
            elif holder_id != download_id and holder.state is not State.DONE:
                return True
        if not holders:
            del self._holders[name]
        return False


class _Taken:
    """`name in taken`: held by another unfinished download (only inside `choosing`)."""

    def __init__(self, claims: Claims, download_id: int) -> None:
        self._claims, self._download_id = claims, download_id

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._claims.held_by_another(name, self._download_id)
