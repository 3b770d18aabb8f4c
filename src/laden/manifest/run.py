"""Running a planned manifest on a `DownloadManager`, and what became of each item.

A run is a set of journal entries in the manifest's group, like any other downloads. Running the
same manifest again therefore continues it: the manager's `add` finds each file by its address
and place, resumes an unfinished one and keeps a finished one that is still on disk at its size
(hashed first with `rehash`, `laden run --verify`; see `engine.reruns`), so the summary can say
what was checked. An upload an earlier run finished is kept while its local file is unchanged
(`DownloadManager.finished_uploads`; with `rehash`, its object is compared at the service).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import LadenError, is_permanent
from ..core.snapshots import DownloadInfo
from ..core.states import SETTLED, State
from ..engine.events import AlreadyDownloaded
from .model import Manifest
from .plan import PlannedFile, PlannedItem

log = logging.getLogger("laden.manifest")


@dataclass
class ItemResult:
    title: str
    files: int = 0
    done: int = 0
    skipped: int = 0
    earlier: int = 0
    """Files a previous run of the manifest finished."""
    bytes: int = 0
    seconds: float | None = None
    verified: str = "-"
    """yes (every file's checksum matched, in this run), partly, no (a mismatch), size only
    (files kept from an earlier run, their size checked but not hashed again), or - (no
    checksum known)."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.done == self.files


class ManifestRun:
    def __init__(self, manifest: Manifest, planned: list[PlannedItem], manager: Any, *,
                 rehash: bool = False) -> None:
        self.manifest = manifest
        self.planned = planned
        self.manager = manager
        self.rehash = rehash
        """Hash the files an earlier run finished before keeping them (`--verify`)."""
        self.ids: list[int] = []
        self._item_of: dict[int, int] = {}
        self._earlier: dict[int, list[tuple[DownloadInfo, bool]]] = {}
        """Per item: the files kept from an earlier run, and whether they were hashed now."""
        self._started: dict[int, float] = {}
        self._ended: dict[int, float] = {}
        self._settled: set[int] = set()
        self._seen: dict[int, int] = {}
        """The newest snapshot's `sequence` noted for each download."""
        self._lock = threading.Lock()

    def start(self) -> None:
        """Queue every file (or find it finished or unfinished in the journal)."""
        kept: dict[int, AlreadyDownloaded] = {}
        unsubscribe = self.manager.subscribe(
            lambda event: kept.setdefault(event.download_id, event)
            if isinstance(event, AlreadyDownloaded) else None, progress=False)
        sent = self._sent_before()
        try:
            for number, entry in enumerate(self.planned):
                for planned_file in entry.files:
                    earlier = sent.get((planned_file.dest, planned_file.url))
                    if earlier is not None and planned_file.upload is not None:
                        checked = self._still_there(earlier)
                        if checked is not None:
                            self._earlier.setdefault(number, []).append((earlier, checked))
                            continue
                    try:
                        download_id = self._add(planned_file)
                    except LadenError as exc:
                        entry.errors.append(f"{planned_file.label}: {exc}")
                        entry.permanent = entry.permanent or is_permanent(exc)
                        continue
                    if download_id in kept:
                        event = kept[download_id]
                        self._earlier.setdefault(number, []).append(
                            (event.info, event.hashed is not None))
                        continue
                    self.ids.append(download_id)
                    self._item_of[download_id] = number
        finally:
            unsubscribe()

    def _sent_before(self) -> dict[tuple[str, str], DownloadInfo]:
        """The uploads an earlier run of the manifest finished, whose file is unchanged."""
        if not any(f.upload for entry in self.planned for f in entry.files):
            return {}
        return {(info.dest, info.url): info
                for info in self.manager.finished_uploads(self.manifest.group)}

    def _still_there(self, info: DownloadInfo) -> bool | None:
        """Whether to keep an upload an earlier run finished: False (kept, its object not
        asked for), True (`--verify`: the object at the service matched the file), None (it
        did not: send the file again)."""
        if not self.rehash:
            return False
        result = self.manager.verify(info.id)
        return True if result.ok else None

    def _add(self, planned_file: PlannedFile) -> int:
        upload = planned_file.upload
        if upload is not None:
            return int(self.manager.add_upload(
                planned_file.dest, planned_file.url, options=planned_file.options,
                conflict=upload.conflict, on_change=upload.on_change,
                group=self.manifest.group))
        return int(self.manager.add(planned_file.url, planned_file.dest,
                                    options=planned_file.options, group=self.manifest.group,
                                    rehash=self.rehash))

    def observe(self, infos: list[DownloadInfo]) -> None:
        """Note when each download started and settled, from snapshots taken before the
        events were listened to (the display loop's first look)."""
        for info in infos:
            self.note(info)

    def note(self, info: DownloadInfo) -> bool:
        """Note one snapshot (from an event, on the engine's threads, or from the display
        loop); True when every download of the run has settled."""
        now = time.monotonic()
        with self._lock:
            if info.id not in self._item_of:
                return False
            # Events for one download may arrive out of order, and the display's first look
            # may be older than an event already noted: an older snapshot must not undo a
            # settling.
            if self._seen.get(info.id, -1) > info.sequence:
                return len(self._settled) == len(self._item_of)
            self._seen[info.id] = info.sequence
            if info.state is not State.QUEUED:
                self._started.setdefault(info.id, now)
            if info.state in SETTLED:
                self._ended.setdefault(info.id, now)
                self._settled.add(info.id)
            else:  # resumed, or queued again: it ends when it settles again
                self._settled.discard(info.id)
                self._ended.pop(info.id, None)
            return len(self._settled) == len(self._item_of)

    def infos(self) -> list[DownloadInfo]:
        return [self.manager.get(i) for i in self.ids]

    def results(self, infos: list[DownloadInfo]) -> list[ItemResult]:
        """Each item's outcome, from its downloads as they ended (`infos`, the run's)."""
        results = []
        by_item: dict[int, list[DownloadInfo]] = {}
        for info in infos:
            by_item.setdefault(self._item_of[info.id], []).append(info)
        for number, entry in enumerate(self.planned):
            result = ItemResult(entry.item.title, files=len(entry.files),
                                errors=list(entry.errors))
            mine = by_item.get(number, [])
            earlier = self._earlier.get(number, [])
            result.earlier = len(earlier)
            verdicts = []
            for info in mine:
                if info.state is State.DONE:
                    result.done += 1
                    result.bytes += info.size or 0
                    result.skipped += info.skipped
                else:
                    result.errors.append(f"{info.name}: {info.message or info.state.value}")
                verdicts.append(_checked(info))
            for info, hashed in earlier:
                result.done += 1
                result.bytes += info.size or 0
                verdicts.append("hashed" if hashed else "size")
            result.verified = _verified(verdicts)
            starts = [self._started[i.id] for i in mine if i.id in self._started]
            ends = [self._ended[i.id] for i in mine if i.id in self._ended]
            if starts and ends:
                result.seconds = max(ends) - min(starts)
            results.append(result)
        return results


def _checked(info: DownloadInfo) -> str:
    """What this run proved of a file it downloaded: hashed, mismatch, or none."""
    checks = [c.verified for c in info.checksums if c.verified is not None]
    if False in checks:
        return "mismatch"
    return "hashed" if checks else "none"


def _verified(verdicts: list[str]) -> str:
    """One word for an item's files (see `ItemResult.verified`)."""
    if "mismatch" in verdicts:
        return "no"
    hashed = verdicts.count("hashed")
    if verdicts and hashed == len(verdicts):
        return "yes"
    if hashed:
        return "partly"
    return "size only" if "size" in verdicts else "-"
