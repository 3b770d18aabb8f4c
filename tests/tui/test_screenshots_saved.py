"""The app's screenshots: where the palette's Screenshot command saves, and the SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from laden.tui.app import open_app

from .helpers import SIZE

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]

SVG = "{http://www.w3.org/2000/svg}"


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
