"""Running a planned manifest on a `DownloadManager`, and what became of each item.

A run is a set of journal entries in the manifest's group, like any other downloads. Running the
same manifest again therefore continues it: unfinished files are found by the manager's `add`
(same address, same place) and resume; files the journal finished in an earlier run, and that
are still on disk at their size, are not downloaded again.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..engine.errors import LadenError
from ..engine.info import DownloadInfo
from ..engine.states import State
from ..engine.urls import strip_credentials
from .model import Manifest
from .plan import PlannedItem

log = logging.getLogger("laden.manifest")
SETTLED = (State.DONE, State.FAILED, State.CANCELLED, State.PAUSED)


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
    """yes (every file), partly, no (a mismatch), or - (no checksum known)."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.done == self.files


class ManifestRun:
    def __init__(self, manifest: Manifest, planned: list[PlannedItem], manager: Any) -> None:
        self.manifest = manifest
        self.planned = planned
        self.manager = manager
        self.ids: list[int] = []
        self._item_of: dict[int, int] = {}
        self._earlier: dict[int, list[DownloadInfo]] = {}
        self._started: dict[int, float] = {}
        self._ended: dict[int, float] = {}

    def start(self) -> None:
        """Queue every file (or find it finished or unfinished in the journal)."""
        finished = self._finished_earlier()
        for number, entry in enumerate(self.planned):
            for planned_file in entry.files:
                earlier = finished.get((strip_credentials(planned_file.url), planned_file.dest))
                if earlier is not None:
                    self._earlier.setdefault(number, []).append(earlier)
                    continue
                try:
                    download_id = self.manager.add(
                        planned_file.url, planned_file.dest, options=planned_file.options,
                        group=self.manifest.group)
                except LadenError as exc:
                    entry.errors.append(f"{planned_file.label}: {exc}")
                    continue
                self.ids.append(download_id)
                self._item_of[download_id] = number

    def _finished_earlier(self) -> dict[tuple[str, str], DownloadInfo]:
        found = {}
        for info in self.manager.list():
            if info.group != self.manifest.group or info.state is not State.DONE:
                continue
            if not os.path.isfile(info.dest) or (
                    info.size is not None and os.path.getsize(info.dest) != info.size):
                continue  # deleted or changed since: download it again
            # A file target is matched by its path, a folder target (server-chosen name) by
            # the folder it went into.
            found[(info.url, info.dest)] = info
            found[(info.url, os.path.dirname(info.dest) + os.sep)] = info
        return found

    def observe(self, infos: list[DownloadInfo]) -> None:
        """Note when each download started and settled (called by the display loop)."""
        now = time.monotonic()
        for info in infos:
            if info.state is not State.QUEUED:
                self._started.setdefault(info.id, now)
            if info.state in SETTLED:
                self._ended.setdefault(info.id, now)

    def infos(self) -> list[DownloadInfo]:
        return [self.manager.get(i) for i in self.ids]

    def results(self) -> list[ItemResult]:
        results = []
        infos = {info.id: info for info in self.infos()}
        for number, entry in enumerate(self.planned):
            result = ItemResult(entry.item.title, files=len(entry.files),
                                errors=list(entry.errors))
            mine = [infos[i] for i, n in self._item_of.items() if n == number]
            earlier = self._earlier.get(number, [])
            result.earlier = len(earlier)
            checks = []
            for info in mine + earlier:
                if info.state is State.DONE:
                    result.done += 1
                    result.bytes += info.size or 0
                    result.skipped += info.message.startswith("skipped")
                elif info.state is not State.DONE:
                    result.errors.append(f"{info.name}: {info.message or info.state.value}")
                checks.append([c.verified for c in info.checksums if c.verified is not None])
            result.verified = _verified(checks)
            starts = [self._started[i.id] for i in mine if i.id in self._started]
            ends = [self._ended[i.id] for i in mine if i.id in self._ended]
            if starts and ends:
                result.seconds = max(ends) - min(starts)
            results.append(result)
        return results


def _verified(checks: list[list[bool]]) -> str:
    if any(False in c for c in checks):
        return "no"
    proven = sum(1 for c in checks if c and all(c))
    if not proven:
        return "-"
    return "yes" if proven == len(checks) else "partly"
