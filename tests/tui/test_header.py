"""The header line: free space where the selected download is saved; paths under home as ~."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from laden.core.states import State
from laden.tui import app as app_module
from laden.tui.app import open_app
from laden.tui.widgets.download_facts import DownloadFacts
from laden.tui.widgets.header_bar import HeaderBar
from servers.fixtures import random_bytes
from servers.http_server import FileServer

from .helpers import SIZE, find, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]

GiB = 1024**3


async def test_free_space_follows_the_selected_downloads_folder(
    http_server: FileServer, downloads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Both folders are on the test's one disk: tell them apart by what each reports.
    monkeypatch.setattr(app_module, "free_space",
                        lambda folder: 7 * GiB if folder == str(elsewhere) else 3 * GiB)
    here = http_server.add_file("/here.bin", random_bytes(10_000, seed=51))
    there = http_server.add_file("/there.bin", random_bytes(10_000, seed=52))
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        app.manager.add(here)
        app.manager.add(there, str(elsewhere))
        await wait_for(pilot, lambda: len(app.downloads) == 2
                       and all(state_of(app, i) is State.DONE for i in app.downloads))

        def header() -> str:
            return app.queue_screen.query_one(HeaderBar).render().plain

        app.queue_screen.table.select(find(app, "there.bin").id)
        await wait_for(pilot, lambda: "free 7.0 GiB in" in header(),
                       what="the free space of elsewhere/")
        assert header().endswith("/elsewhere")
        await pilot.press("up")
        await wait_for(pilot, lambda: "free 3.0 GiB in" in header(),
                       what="the free space of downloads/")
        assert header().endswith("/downloads")


async def test_folders_under_home_are_shown_with_a_tilde(
    http_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / "isos"
    folder.mkdir()
    url = http_server.add_file("/a.iso", random_bytes(10_000, seed=53))
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        app.manager.add(url, str(folder))
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="done")
        await wait_for(pilot, lambda: app.queue_screen.query_one(HeaderBar).render().plain
                       .endswith(" in ~/isos"), what="~/isos in the header")
        await pilot.press("enter")
        facts = app.screen.query_one(DownloadFacts).render()
        console = Console(width=SIZE[0], record=True, file=io.StringIO())
        console.print(facts)
        destination = next(line for line in console.export_text().splitlines()
                           if line.startswith("Destination"))
        assert destination.split()[1:] == ["~/isos/a.iso"]
