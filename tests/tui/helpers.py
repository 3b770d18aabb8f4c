"""Helpers for the app's tests: settings files, waiting on the real engine, reading the queue."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import tomli_w
from textual.pilot import Pilot

from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from laden.tui.app import LadenApp

SIZE = (120, 35)


def write_settings(laden_dirs: dict[str, Path], **values: object) -> Path:
    path = laden_dirs["config"] / "config.toml"
    path.write_text(tomli_w.dumps(values), encoding="utf-8")
    return path


async def wait_for(
    pilot: Pilot[int], predicate: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    """Let the app run until `predicate()` is true; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def state_of(app: LadenApp, download_id: int) -> State | None:
    info = app.downloads.get(download_id)
    return info.state if info is not None else None


def cell(app: LadenApp, download_id: int, column: str) -> str:
    """What the queue shows in a cell, as plain text."""
    value = app.queue_screen.table.get_cell(str(download_id), column)
    return str(getattr(value, "plain", value))


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ids(app: LadenApp) -> list[int]:
    return sorted(app.downloads)


def find(app: LadenApp, name: str) -> DownloadInfo:
    return next(info for info in app.downloads.values() if info.name == name)


def notifications(app: LadenApp) -> list[str]:
    # Textual keeps the live toasts here; there is no public accessor for them.
    return [f"{n.title}: {n.message}" for n in app._notifications]
