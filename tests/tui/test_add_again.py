"""The add dialog and a file already downloaded there: it says so and offers the choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static

from laden.core.states import State
from laden.tui.app import open_app
from laden.tui.screens.add_modal import AddModal
from servers.http_server import FileServer

from .helpers import SIZE, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


async def test_adding_a_finished_download_offers_to_download_again(
    http_server: FileServer, downloads: Path
) -> None:
    url = http_server.add_file("/twice.bin", b"t" * 5000)
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="the download")
        await pilot.press("a")
        assert isinstance(app.screen, AddModal)
        app.screen.query_one("#add-url", Input).value = url
        app.screen.query_one("#add-dest", Input).value = str(downloads)
        await pilot.press("enter")
        error = app.screen.query_one("#add-error", Static)
        await wait_for(pilot, lambda: "Already downloaded" in str(error.content),
                       what="the offer")
        assert str(downloads / "twice.bin") in str(error.content)
        assert str(app.screen.query_one("#add-ok", Button).label) == "Download again"
        assert list(app.downloads) == [1]
        await pilot.press("enter")  # yes, again
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the dialog closing")
        await wait_for(pilot, lambda: 2 in app.downloads and state_of(app, 2) is State.DONE,
                       what="the second download")
    assert sorted(p.name for p in downloads.iterdir()) == ["twice.1.bin", "twice.bin"]
