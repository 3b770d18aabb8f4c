"""Events come from several engine threads and may arrive out of order: the app keeps the
newest snapshot of each download by its number, and never asks the manager again."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from laden.core.snapshots import DownloadInfo, Tick
from laden.core.states import State
from laden.tui.app import LadenApp
from laden.tui.messages import DownloadChanged, DownloadProgress

from .helpers import SIZE, cell
from .still_manager import StillManager, busy_iso

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


class AskedManager(StillManager):
    """Counts the snapshots the app asks for after it has listed the downloads."""

    def __init__(self, infos: list[DownloadInfo]) -> None:
        super().__init__(infos)
        self.asked = 0

    def get(self, download_id: int) -> DownloadInfo:
        self.asked += 1
        return super().get(download_id)


async def test_a_snapshot_that_arrives_late_changes_nothing() -> None:
    running = replace(busy_iso(), sequence=10)
    manager: Any = AskedManager([running])
    app = LadenApp(manager)
    async with app.run_test(size=SIZE) as pilot:
        paused = replace(running, state=State.PAUSED, speed=0.0, eta=None, sequence=12)
        app.post_message(DownloadChanged(paused))
        await pilot.pause()
        # Taken before the pause on another thread, delivered after it.
        app.post_message(DownloadChanged(replace(running, sequence=11)))
        await pilot.pause()
        app.post_message(DownloadProgress(Tick.of(replace(running, done=1, sequence=9))))
        await pilot.pause()
        assert app.downloads[running.id] == paused
        assert cell(app, running.id, "state") == "paused"
        # A newer tick moves the numbers and keeps the rest of the snapshot.
        later = replace(paused, done=paused.done + 4096, sequence=13)
        app.post_message(DownloadProgress(Tick.of(later)))
        await pilot.pause()
        assert app.downloads[running.id] == later
    assert manager.asked == 0
