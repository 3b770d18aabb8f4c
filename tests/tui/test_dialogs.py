"""The add dialog, the command palette, the keymap and the app's start-up failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from laden.core.states import State
from laden.engine.manager import DownloadManager
from laden.tui.app import open_app, run_app
from laden.tui.screens.add_modal import AddModal
from servers.fixtures import random_bytes
from servers.http_server import FileServer

from .helpers import SIZE, sha256, state_of, wait_for, write_settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


async def test_add_through_the_dialog(http_server: FileServer, downloads: Path) -> None:
    data = random_bytes(500_000, seed=11)
    url = http_server.add_file("/added.bin", data)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, AddModal)
        app.screen.query_one("#add-url", Input).value = url
        app.screen.query_one("#add-dest", Input).value = str(downloads / "renamed.bin")
        app.screen.query_one("#add-connections", Input).value = "2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the dialog closing")
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="the download")
        assert app.downloads[1].options.get("connections") == 2
    assert sha256(downloads / "renamed.bin") == sha256(_write(downloads / "expected", data))


async def test_bad_address_in_the_dialog_shows_an_error(http_server: FileServer) -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await pilot.press("enter")
        error = app.screen.query_one("#add-error", Static)
        assert "Enter the address" in str(error.content)
        await pilot.press(*"gopher://example/x")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "gopher" in str(error.content).lower(),
                       what="the engine's complaint")
        assert isinstance(app.screen, AddModal), "the dialog must stay open to fix the address"
        assert not app.downloads
        await pilot.press("escape")
        assert app.screen is app.queue_screen


async def test_command_palette_runs_actions(http_server: FileServer) -> None:
    url = http_server.add_file("/p.bin", b"x" * 1000)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        app.manager.add(url)
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE)
        await pilot.press("ctrl+p")
        await pilot.press(*"settings")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen",
                       what="settings opened from the palette")


async def test_keymap_from_the_settings_rebinds_keys(laden_dirs: dict[str, Path],
                                                     downloads: Path) -> None:
    write_settings(laden_dirs, download_dir=str(downloads), keymap={"add": "ctrl+n"})
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        assert app.screen is app.queue_screen, "the old key still adds"
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, AddModal)


def test_another_laden_owning_the_state_folder_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with DownloadManager():
        code = run_app([])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("laden: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
