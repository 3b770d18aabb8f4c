"""Pictures of the screens with fixed data (pytest-textual-snapshot): the queue (downloads and
an upload), a download's and an upload's details, the settings.

Update them after a deliberate change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.pilot import Pilot

from laden.tui import app as app_module
from laden.tui.app import LadenApp

from .helpers import SIZE
from .still_manager import StillManager, still_downloads


@pytest.fixture
def still_app(monkeypatch: pytest.MonkeyPatch, settings_file: Any) -> LadenApp:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(app_module, "free_space", lambda folder: 187 * 1024**3)
    monkeypatch.setattr(app_module.paths, "settings_path",
                        lambda: "/home/ada/.config/laden/config.toml")
    manager: Any = StillManager(still_downloads())
    return LadenApp(manager)


def test_queue_screen(snap_compare: Any, still_app: LadenApp) -> None:
    assert snap_compare(still_app, terminal_size=SIZE)


def test_detail_screen(snap_compare: Any, still_app: LadenApp) -> None:
    assert snap_compare(still_app, terminal_size=SIZE, press=["enter"])


def test_upload_detail_screen(snap_compare: Any, still_app: LadenApp) -> None:
    async def open_upload(pilot: Pilot[int]) -> None:
        still_app.queue_screen.table.select(8)
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(still_app, terminal_size=SIZE, run_before=open_upload)


def test_settings_screen(snap_compare: Any, still_app: LadenApp) -> None:
    async def open_settings(pilot: Pilot[int]) -> None:
        await pilot.press("s")
        await pilot.pause()

    assert snap_compare(still_app, terminal_size=SIZE, run_before=open_settings)
