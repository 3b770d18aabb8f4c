"""The app against the real engine and the test HTTP server: launching with URLs, keys,
sessions across restarts, removing, verifying and a queue of a thousand downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Static

from laden.core.states import State
from laden.sources.http import PROBE_RANGE
from laden.tui.app import open_app
from laden.tui.screens.confirm_remove import ConfirmRemove
from laden.tui.screens.detail import DetailScreen
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from .helpers import SIZE, cell, find, notifications, sha256, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]

SLOW = Faults(rate_per_connection=64 * 1024)


async def test_launch_with_urls_downloads_them(http_server: FileServer, downloads: Path) -> None:
    big, small = random_bytes(3 << 20, seed=1), random_bytes(300_000, seed=2)
    urls = [http_server.add_file("/big.bin", big), http_server.add_file("/small.txt", small)]
    app = open_app(urls)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 2, what="both URLs in the queue")
        await wait_for(pilot, lambda: all(i.state is State.DONE for i in app.downloads.values()),
                       what="both downloads done")
        for info in app.downloads.values():
            assert cell(app, info.id, "state") == "done"
            assert cell(app, info.id, "percent").strip() == "100.0%"
        await wait_for(pilot, lambda: any("Download complete" in n for n in notifications(app)))
    assert sha256(downloads / "big.bin") == sha256_of(big)
    assert sha256(downloads / "small.txt") == sha256_of(small)


async def test_bad_url_on_the_command_line_is_a_notification(http_server: FileServer) -> None:
    app = open_app(["htp:/nonsense"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("Could not add" in n for n in notifications(app)))
        assert not app.downloads
        assert app.queue_screen.query_one("#empty-hint").display


async def test_pause_and_resume_with_keys(http_server: FileServer, downloads: Path) -> None:
    data = random_bytes(2 << 20, seed=3)
    url = http_server.add_file("/slow.bin", data, faults=Faults(rate_per_connection=128 * 1024))
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DOWNLOADING, what="downloading")
        await pilot.press("space")
        await wait_for(pilot, lambda: state_of(app, 1) is State.PAUSED, what="paused by space")
        assert cell(app, 1, "state") == "paused"
        # Reads already in flight land after the pause; then nothing more may arrive.
        done = (await asyncio.to_thread(app.manager.wait, 1, 5)).done
        await pilot.pause(0.6)
        assert app.manager.get(1).done == done, "bytes kept arriving while paused"
        await pilot.press("r")
        await wait_for(pilot, lambda: state_of(app, 1) is State.DOWNLOADING, what="resumed by r")
        await pilot.press("p")
        await wait_for(pilot, lambda: state_of(app, 1) is State.PAUSED, what="paused by p")
        http_server.set_faults("/slow.bin", Faults())
        await pilot.press("space")
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="done after resume")
        ranges = [r.range for r in http_server.ranged_requests("/slow.bin")]
        assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges
    assert sha256(downloads / "slow.bin") == sha256_of(data)


async def test_pause_all_and_resume_all(http_server: FileServer) -> None:
    urls = [http_server.add_file(f"/f{n}.bin", random_bytes(1 << 20, seed=n), faults=SLOW)
            for n in range(3)]
    app = open_app(urls)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 3)
        await pilot.press("P")
        await wait_for(pilot, lambda: all(i.state is State.PAUSED
                                          for i in app.downloads.values()), what="all paused")
        await pilot.press("R")
        await wait_for(pilot, lambda: all(i.state is not State.PAUSED
                                          for i in app.downloads.values()), what="all resumed")


async def test_quit_and_start_again_restores_the_session(
    http_server: FileServer, downloads: Path
) -> None:
    running = random_bytes(2 << 20, seed=4)
    held = random_bytes(1 << 20, seed=5)
    running_url = http_server.add_file("/running.bin", running, faults=SLOW)
    held_url = http_server.add_file("/held.bin", held, faults=SLOW)
    app = open_app([running_url, held_url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 2)
        held_id = find(app, "held.bin").id
        running_id = find(app, "running.bin").id
        app.queue_screen.table.select(held_id)
        await pilot.press("p")
        await wait_for(pilot, lambda: state_of(app, held_id) is State.PAUSED)
        await wait_for(pilot, lambda: app.downloads[running_id].done > 256 * 1024,
                       what="some bytes of the running download")
        await pilot.press("q", "q")  # the second q answers "quit while downloading?"
    assert app.return_code == 0
    assert not (downloads / "running.bin").exists()

    http_server.set_faults("/running.bin", Faults())
    http_server.clear_log()
    again = open_app()
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(again.downloads) == 2, what="the saved session")
        assert state_of(again, held_id) is State.PAUSED
        assert cell(again, held_id, "state") == "paused"
        # Nobody pressed a key: the interrupted download resumes by itself.
        await wait_for(pilot, lambda: state_of(again, running_id) is State.DONE,
                       what="the interrupted download finishing")
        assert state_of(again, held_id) is State.PAUSED
    # Past the probe (PROBE_RANGE), every request continues where the first session stopped.
    requests = http_server.ranged_requests("/running.bin")
    ranges = [r.range for r in requests if r.range != PROBE_RANGE]
    assert ranges and all(r and not r.startswith("bytes=0-") for r in ranges), ranges
    assert sha256(downloads / "running.bin") == sha256_of(running)


async def test_remove_asks_and_can_delete_the_file(
    http_server: FileServer, downloads: Path
) -> None:
    url = http_server.add_file("/keep.bin", random_bytes(100_000, seed=6))
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE)
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmRemove)
        await pilot.press("escape")
        assert 1 in app.downloads and (downloads / "keep.bin").exists()
        await pilot.press("delete")
        await pilot.click("#remove-file")
        await pilot.click("#remove-ok")
        await wait_for(pilot, lambda: 1 not in app.downloads, what="the row removed")
        assert app.queue_screen.table.row_count == 0
    assert not (downloads / "keep.bin").exists()


async def test_verify_key_reports_the_checksum(http_server: FileServer) -> None:
    url = http_server.add_file("/v.bin", random_bytes(200_000, seed=7))
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE)
        await pilot.press("v")
        await wait_for(pilot, lambda: any(n.startswith("Verified:") for n in notifications(app)),
                       what="the verify toast")
        assert any("sha256" in n for n in notifications(app))


async def test_detail_screen_opens_and_escape_goes_back(http_server: FileServer) -> None:
    url = http_server.add_file("/detail.bin", random_bytes(1 << 20, seed=8), faults=SLOW)
    app = open_app([url])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state_of(app, 1) is State.DOWNLOADING)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await wait_for(pilot, lambda: app.screen.query_one("ConnectionTable").row_count > 0,
                       what="connections in the detail screen")
        title = str(app.screen.query_one("#detail-title", Static).content)
        assert "detail.bin" in title
        await pilot.press("space")  # queue keys work here too
        await wait_for(pilot, lambda: state_of(app, 1) is State.PAUSED)
        await pilot.press("escape")
        assert app.screen is app.queue_screen


async def test_move_changes_the_queue_order(http_server: FileServer) -> None:
    urls = [http_server.add_file(f"/m{n}.bin", b"x" * 1000, faults=SLOW) for n in range(3)]
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        for url in urls:
            app.manager.add(url, start=False)
        table = app.queue_screen.table
        await wait_for(pilot, lambda: table.row_count == 3)
        table.select(3)
        await pilot.press("plus")
        await wait_for(pilot, lambda: table.get_row_index("3") == 1, what="moved up")
        assert table.selected_id == 3
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: table.get_row_index("3") == 2, what="moved down")


async def test_a_thousand_downloads_open_and_scroll(http_server: FileServer) -> None:
    url = http_server.base_url
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        for n in range(1000):
            app.manager.add(f"{url}/file{n:04}.bin", start=False)
        table = app.queue_screen.table
        await wait_for(pilot, lambda: table.row_count == 1000, timeout=30, what="1000 rows")
        assert table.get_row_at(999)[1].plain == "file0999.bin"
        await pilot.press("end")
        assert table.selected_id == max(app.downloads)
        assert table.scroll_y > 900
        await pilot.press("pageup", "up")
        assert table.cursor_row < 999
        await pilot.press("home")
        assert table.scroll_y == 0
        assert "1000 paused" in str(app.queue_screen.query_one("HeaderBar").render())


def sha256_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
