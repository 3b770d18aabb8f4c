"""Quitting: at once when nothing runs, after one question while downloads are running."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from laden.core.states import State
from laden.tui.app import open_app
from laden.tui.screens.confirm_quit import ConfirmQuit
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from .helpers import SIZE, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]

SLOW = Faults(rate_per_connection=64 * 1024)


async def test_q_asks_once_while_a_download_runs(http_server: FileServer) -> None:
    url = http_server.add_file("/running.bin", random_bytes(2 << 20, seed=41), faults=SLOW)
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DOWNLOADING, what="downloading")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit), "q quit with a download running"
        said = " ".join(str(w.content) for w in app.screen.query(Static))
        assert "1 download is running" in said
        assert "resume" in said and "next time you start laden" in said
        await pilot.press("escape")
        assert app.screen is app.queue_screen
        assert app.return_code is None, "Stay must not quit"
        assert state_of(app, 1) is State.DOWNLOADING
        await pilot.press("ctrl+q")  # Textual's own quit key asks the same question
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("q")  # the answer: quit anyway
        await wait_for(pilot, lambda: app.return_code is not None, what="the app quitting")
    assert app.return_code == 0


async def test_q_quits_at_once_when_nothing_runs(http_server: FileServer) -> None:
    url = http_server.add_file("/small.bin", random_bytes(10_000, seed=42))
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="done")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, what="the app quitting")
        assert not isinstance(app.screen, ConfirmQuit)
    assert app.return_code == 0
