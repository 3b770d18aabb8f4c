"""From a valid manifest to the files it means: folders listed, sizes found, disk space checked.

Listing and probing talk to the servers but download nothing, so `laden run --dry-run` is this
module and nothing else. A folder whose listing fails, or a file that cannot be probed, makes
its item fail with the reason; the other items are still planned.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from ..core.errors import InputError, LadenError, is_permanent
from ..core.names import sanitize_filename
from ..core.options import DownloadOptions
from ..core.urls import strip_credentials
from .model import Item, Manifest, Target, Upload

log = logging.getLogger("laden.manifest")
PROBE_WORKERS = 8


@dataclass(frozen=True)
class PlannedFile:
    url: str
    dest: str
    """The file's path, or a folder ending in a separator when the server names the file."""
    options: DownloadOptions
    size: int | None = None
    label: str = ""
    upload: Upload | None = None
    """For an upload: `url` is where it goes, `dest` the local file (see `Target.upload`)."""


@dataclass
class PlannedItem:
    item: Item
    files: list[PlannedFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    permanent: bool = False
    """One of `errors` is one that trying again cannot fix (`errors.is_permanent`)."""


def expand(manifest: Manifest, sources: Any) -> list[PlannedItem]:
    """Every item with its files; folders are listed through their source (`sources` is a
    `SourceRegistry`)."""
    planned = []
    for item in manifest.items:
        entry = PlannedItem(item)
        for target in item.targets:
            if target.upload is not None:  # a local file: its size is known
                entry.files.append(PlannedFile(target.url, target.dest, target.options,
                                               _local_size(target.dest), target.label,
                                               target.upload))
                continue
            if not target.folder:
                entry.files.append(PlannedFile(target.url, target.dest, target.options,
                                               label=target.label))
                continue
            try:
                entry.files += _listed(target, sources)
            except LadenError as exc:
                entry.errors.append(f"{target.label}: {exc}")
                entry.permanent = entry.permanent or is_permanent(exc)
            except Exception as exc:  # a source's bug must not hide the other items
                log.exception("listing %s failed", strip_credentials(target.url))
                entry.errors.append(f"{target.label}: cannot list: {type(exc).__name__}: {exc}")
        log.info("manifest item %s: %d files", item.title, len(entry.files))
        planned.append(entry)
    return planned


def _local_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:  # gone since the manifest was checked: adding it says so
        return None


def _listed(target: Target, sources: Any) -> list[PlannedFile]:
    source = sources.for_url(target.url)
    glob = target.glob or "**/*"
    files = []
    for listed in source.list(target.url, target.options):
        relative = listed.relative_path.strip("/")
        parts = relative.split("/")
        # A listing is remote input: a name that climbs out of the folder is never followed.
        if not relative or any(p in ("", ".", "..") for p in parts):
            log.warning("skipped %r from the listing of %s", relative, target.label)
            continue
        if not glob_matches(glob, relative):
            continue
        files.append(PlannedFile(listed.url, os.path.join(target.dest, *parts), target.options,
                                 listed.size, f"{target.label.rstrip('/')}/{relative}"))
    if not files:
        raise _NothingMatched(f"no files match {glob!r}")
    return files


class _NothingMatched(InputError):  # the manifest names nothing there: another try is the same
    pass


def measure(planned: Iterable[PlannedItem], sources: Any) -> None:
    """Find the size of every file that a listing did not give (probes run in parallel)."""
    todo = [(entry, index) for entry in planned for index, f in enumerate(entry.files)
            if f.size is None and f.upload is None]

    def probe(job: tuple[PlannedItem, int]) -> None:
        entry, index = job
        planned_file = entry.files[index]
        source = sources.for_url(planned_file.url)
        try:
            try:  # what a rerun asks: without the bytes, which a dry run does not want
                remote = source.current_version(planned_file.url, planned_file.options)
            except LadenError:  # a HEAD refused where a GET is not (an address signed for GET)
                remote = source.probe(planned_file.url, planned_file.options)
            dest = planned_file.dest
            name = sanitize_filename(remote.filename)
            if dest.endswith(os.sep) and name:
                dest += name  # the name the server gives, as the download will use
            entry.files[index] = replace(planned_file, size=remote.size, dest=dest)
        except LadenError as exc:
            entry.errors.append(f"{planned_file.label}: {exc}")

    with ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="laden-probe") as pool:
        list(pool.map(probe, todo))


@dataclass(frozen=True)
class DiskCheck:
    folder: str
    """The existing folder whose file system was asked (the nearest one above the targets)."""
    needed: int
    free: int
    unknown: int
    """Files whose size is not known, so not counted in `needed`."""

    @property
    def fits(self) -> bool:
        return self.needed <= self.free


def disk_checks(planned: Iterable[PlannedItem]) -> list[DiskCheck]:
    """Bytes needed against bytes free, per file system the targets are on."""
    needed: dict[int, list[Any]] = {}
    for entry in planned:
        for planned_file in entry.files:
            if _skipped(planned_file) or planned_file.upload is not None:
                continue  # an upload takes no room here
            folder = _existing_parent(planned_file.dest)
            device = os.stat(folder).st_dev
            slot = needed.setdefault(device, [folder, 0, 0])
            if planned_file.size is None:
                slot[2] += 1
            else:
                slot[1] += planned_file.size
    return [DiskCheck(folder, size, shutil.disk_usage(folder).free, unknown)
            for folder, size, unknown in needed.values()]


def _skipped(planned_file: PlannedFile) -> bool:
    return planned_file.options.conflict == "skip" and os.path.isfile(planned_file.dest)


def _existing_parent(path: str) -> str:
    folder = os.path.dirname(path.rstrip(os.sep)) if not path.endswith(os.sep) else path
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder.rstrip(os.sep))
        if parent == folder:
            break
        folder = parent
    return folder


def glob_matches(pattern: str, path: str) -> bool:
    """pathlib-style glob on a "/" path: `*`, `?`, `[...]` stay in one segment, `**` spans any.

    Kaiwo reads a folder's `glob` with pathlib's rules (through cloudpathlib), so `*.md` is
    only the folder's own files; the sources' `glob` setting is broader (a bare name matches at
    any depth), so their listing is narrowed here to what the manifest means.
    """
    pat = [p for p in pattern.strip("/").split("/") if p]
    parts = path.strip("/").split("/")

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(parts)
        if pat[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and fnmatchcase(parts[j], pat[i]) and match(i + 1, j + 1)

    return match(0, 0)
