"""The app shows a model file's structure check: a fact line on the detail screen, and a toast
saying what is wrong when a download fails it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from engine import model_files as mf
from laden.core.states import State
from laden.tui.app import open_app
from laden.tui.widgets.download_facts import DownloadFacts
from servers.http_server import FileServer

from .helpers import SIZE, find, notifications, state_of, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


def facts_text(app: object) -> str:
    console = Console(width=SIZE[0], record=True, file=io.StringIO())
    console.print(app.screen.query_one(DownloadFacts).render())  # type: ignore[attr-defined]
    return console.export_text()


async def test_the_structure_is_a_fact_and_a_failure_a_toast(
    http_server: FileServer, downloads: Path
) -> None:
    good = http_server.add_file("/model.safetensors", mf.safetensors())
    cut = http_server.add_file("/cut/model.gguf", mf.gguf()[:-1])
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        app.manager.add(good, str(downloads))
        app.manager.add(cut, str(downloads / "cut") + "/")
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE
                       and state_of(app, 2) is State.FAILED, what="both settled")
        await wait_for(pilot, lambda: any("model.gguf failed" in n and "tensor 'output.weight' "
                                          "ends at byte" in n for n in notifications(app)),
                       what="the failure's toast")
        app.queue_screen.table.select(find(app, "model.safetensors").id)
        await pilot.press("enter")
        line = next(row for row in facts_text(app).splitlines() if row.startswith("Structure"))
        assert "safetensors, 2 tensors, header" in line and "✓ checked" in line
