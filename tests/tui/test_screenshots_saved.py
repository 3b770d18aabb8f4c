"""The app's screenshots: where the palette's Screenshot command saves, and the SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from laden.tui.app import open_app

from .helpers import SIZE, notifications, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]

SVG = "{http://www.w3.org/2000/svg}"


async def _screenshot_from_the_palette(app: object, pilot: object) -> None:
    await pilot.press("ctrl+p")  # type: ignore[attr-defined]
    await pilot.press(*"screenshot")  # type: ignore[attr-defined]
    await pilot.pause(0.3)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]


async def test_screenshot_goes_to_the_working_folder_not_the_downloads(
    tmp_path: Path, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "Downloads").mkdir(parents=True)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(home / "Downloads"))
    monkeypatch.delenv("TEXTUAL_SCREENSHOT_LOCATION", raising=False)
    monkeypatch.chdir(work)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await _screenshot_from_the_palette(app, pilot)
        await wait_for(pilot, lambda: list(work.glob("*.svg")), what="the screenshot file")
        await wait_for(pilot, lambda: any("Screenshot: Saved to" in n for n in notifications(app)))
        toast = next(n for n in notifications(app) if "Screenshot: Saved to" in n)
        assert str(work) in toast
        assert "[$" not in toast, "the toast shows markup instead of reading it"
    assert not list(downloads.iterdir())
    assert not list((home / "Downloads").iterdir())


async def test_screenshot_location_from_textuals_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    monkeypatch.setenv("TEXTUAL_SCREENSHOT_LOCATION", str(shots))
    monkeypatch.chdir(tmp_path)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await _screenshot_from_the_palette(app, pilot)
        await wait_for(pilot, lambda: list(shots.glob("*.svg")), what="the screenshot file")


async def test_exported_svg_keeps_the_spaces_between_words() -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.6)  # one tick: the header has its counts and free space
        root = ET.fromstring(app.export_screenshot())
    # Without it, renderers that follow SVG's default drop the space that opens each run of
    # text: "0 queued" was drawn as "0queued", "1 failed  free" as "1 failedfree".
    assert root.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve"
    first_line = [t for t in root.iter(f"{SVG}text")
                  if "line-0)" in (t.get("clip-path") or "")]
    header = "".join(t.text or "" for t in first_line).replace("\xa0", " ")
    assert "0 active · 0 queued · 0 done" in header
    assert "  free " in header
