"""Downloads finished in earlier sessions are folded away, so they never bury the live ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from laden.core.states import State
from laden.engine.manager import DownloadManager
from laden.store import settings
from laden.tui.app import open_app
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from .helpers import SIZE, find, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


def earlier_session(http_server: FileServer, count: int) -> None:
    """Finish `count` downloads in a session of their own, as yesterday's laden did."""
    with DownloadManager(settings.load()) as manager:
        for n in range(count):
            url = http_server.add_file(f"/old{n}.bin", random_bytes(2_000, seed=60 + n))
            manager.wait(manager.add(url), 15)


def rows(app: object) -> list[str]:
    table = app.queue_screen.table  # type: ignore[attr-defined]
    return [table.get_row_at(i)[1].plain for i in range(table.row_count)]


async def test_history_is_folded_and_h_shows_it(http_server: FileServer,
                                                downloads: Path) -> None:
    earlier_session(http_server, 3)
    live = http_server.add_file("/live.bin", random_bytes(1 << 20, seed=70),
                                faults=Faults(rate_per_connection=64 * 1024))
    quick = http_server.add_file("/quick.bin", random_bytes(2_000, seed=71))
    app = open_app([live, quick])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 5, what="the history and the new")
        await wait_for(pilot, lambda: state_of(app, find(app, "quick.bin").id) is State.DONE,
                       what="quick.bin done in this session")
        # The live download is the first row; what finished this session stays in sight.
        assert rows(app) == ["live.bin", "quick.bin"]
        hint = app.queue_screen.query_one("#history-hint", Static)
        assert hint.display
        assert "3 downloads finished in earlier sessions not shown; h shows them" in str(
            hint.content)
        assert not app.queue_screen.query_one("#empty-hint").display
        await pilot.press("h")
        assert rows(app) == ["old0.bin", "old1.bin", "old2.bin", "live.bin", "quick.bin"]
        assert not hint.display
        await pilot.press("h")
        assert rows(app) == ["live.bin", "quick.bin"]


async def test_only_history_says_so_instead_of_no_downloads(http_server: FileServer) -> None:
    earlier_session(http_server, 1)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 1)
        await pilot.pause(0.1)
        assert rows(app) == []
        assert not app.queue_screen.query_one("#empty-hint").display
        hint = app.queue_screen.query_one("#history-hint", Static)
        assert "1 download finished in earlier sessions not shown; h shows it" in str(
            hint.content)
