"""The help screen: reachable with ?, F1 and the palette, listing the keys in force."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Static

from laden.tui.app import LadenApp, open_app
from laden.tui.screens.add_modal import AddModal
from laden.tui.screens.help import HelpScreen

from .helpers import SIZE, wait_for, write_settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("settings_file")]


def shown_text(app: LadenApp, selector: str) -> str:
    """What a Static of the help screen shows, as plain lines."""
    console = Console(width=SIZE[0], record=True, file=io.StringIO())
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


def row(text: str, words: str) -> str:
    return next(line for line in text.splitlines() if words in line)


async def test_question_mark_and_f1_open_the_help() -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen), "? does nothing"
        keys = shown_text(app, "#help-keys")
        assert row(keys, "Add a download").split()[0] == "a"
        assert row(keys, "Help").startswith("?, f1")
        assert "Move the selected download up" in keys
        screens = " ".join(str(s.content) for s in app.screen.query(".help-screen"))
        assert "free space" in screens and "segment map" in screens
        await pilot.press("escape")
        assert app.screen is app.queue_screen
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen), "F1 does nothing"
        await pilot.press("f1")
        assert app.screen is app.queue_screen


async def test_help_shows_keys_changed_in_the_keymap(laden_dirs: dict[str, Path],
                                                    downloads: Path) -> None:
    write_settings(laden_dirs, download_dir=str(downloads),
                   keymap={"add": "ctrl+n", "help": "f2", "back": "ctrl+b"})
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert app.screen is app.queue_screen, "the old help key still works"
        await pilot.press("f2")
        assert isinstance(app.screen, HelpScreen)
        assert row(shown_text(app, "#help-keys"), "Add a download").split()[0] == "^n"
        assert row(shown_text(app, "#help-keys"), "Help").split()[0] == "f2"
        assert row(shown_text(app, "#help-screen-keys"), "Details").split()[0] == "^b"


async def test_the_palette_finds_help() -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"help")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen),
                       what="help opened from the palette")


async def test_question_mark_in_a_text_field_is_typed() -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "question_mark")
        assert isinstance(app.screen, AddModal)
        assert app.screen.query_one("#add-url", Input).value == "?"
