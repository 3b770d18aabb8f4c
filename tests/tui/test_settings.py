"""The settings screen: saved to TOML, applied to the running engine, checked field by field,
and a broken settings file reported at start-up and never overwritten."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from laden.tui.app import open_app
from laden.tui.screens.settings import SettingsScreen

from .helpers import SIZE, notifications, wait_for, write_settings

pytestmark = pytest.mark.anyio


async def test_saving_writes_toml_and_applies_to_the_engine(settings_file: Path) -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.manager.config.limit_rate is None
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#field-limit_rate", Input).value = "5M"
        screen.query_one("#field-max_active", Input).value = "7"
        screen.query_one("#field-conflict", Select).value = "overwrite"
        screen.query_one("#field-theme", Select).value = "nord"
        screen.query_one("#key-pause_all", Input).value = "ctrl+x"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the screen closing")
        assert app.manager.config.limit_rate == 5 * 1024 * 1024
        assert app.manager.bandwidth.rate == 5 * 1024 * 1024
        assert app.manager.config.max_active == 7
        assert app.theme == "nord"
    saved = tomllib.loads(settings_file.read_text())
    assert saved["limit_rate"] == "5M", "a size is saved as the user typed it"
    assert saved["max_active"] == 7
    assert saved["conflict"] == "overwrite"
    assert saved["connections"] == 4, "untouched settings are kept"
    assert saved["theme"] == "nord"
    assert saved["keymap"] == {"pause_all": "ctrl+x"}


async def test_a_bad_value_is_shown_next_to_its_field(settings_file: Path) -> None:
    before = settings_file.read_text()
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        screen = app.screen
        screen.query_one("#field-connections", Input).value = "99"
        screen.query_one("#field-limit_rate", Input).value = "fast"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen), "a bad value must not close the screen"
        assert "between 1 and 32" in str(screen.query_one("#error-connections", Static).content)
        assert "rate limit" in str(screen.query_one("#error-limit_rate", Static).content)
        assert screen.query_one("#setting-connections").has_class("-invalid")
        assert not screen.query_one("#setting-retries").has_class("-invalid")
        assert screen.focused is screen.query_one("#field-connections")
        await pilot.press("escape")
        assert app.manager.config.connections == 4
    assert settings_file.read_text() == before


async def test_a_broken_settings_file_is_reported_and_kept(
    laden_dirs: dict[str, Path],
) -> None:
    path = laden_dirs["config"] / "config.toml"
    path.write_text("connections = 4\nretries = = 3\nverify = true\n", encoding="utf-8")
    before = path.read_bytes()
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = "\n".join(notifications(app))
        assert str(path) in shown and "line 2" in shown
        assert app.manager.config.connections == 8, "the defaults are used meanwhile"
        await pilot.press("s")
        screen = app.screen
        assert str(path) in str(screen.query_one("#settings-problem", Static).content)
        screen.query_one("#field-retries", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not saved" in "\n".join(notifications(app)).lower(),
                       what="the refusal")
        assert isinstance(app.screen, SettingsScreen)
        assert str(path) in str(screen.query_one("#settings-status", Static).content)
    assert path.read_bytes() == before


async def test_an_invalid_value_in_the_file_names_its_line(
    laden_dirs: dict[str, Path],
) -> None:
    path = write_settings(laden_dirs, retries=1, connections=500)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = "\n".join(notifications(app))
        assert f"{path}, line 2" in shown and "connections" in shown


async def test_an_unknown_setting_in_the_file_is_shown(laden_dirs: dict[str, Path]) -> None:
    path = write_settings(laden_dirs, connections=4, conectionz=4)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = "\n".join(notifications(app))
        assert f"{path}, line 2: conectionz: unknown setting, did you mean connections?" in shown


async def test_the_retry_settings_are_edited_as_people_write_them(settings_file: Path) -> None:
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        screen = app.screen
        kinds = screen.query_one("#field-retry_on", Input)
        assert kinds.value == "timeout, refused, dropped, server-error, slow-down, unresolved"
        kinds.value = "timeout, bogus"
        await pilot.press("ctrl+s")
        assert "'bogus' is not an error kind" in str(
            screen.query_one("#error-retry_on", Static).content)
        kinds.value = "timeout, 5xx"
        screen.query_one("#field-retry_backoff", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the screen closing")
        assert app.manager.config.retry_policy.retry_on == ("timeout", "server-error")
        assert app.manager.config.retry_policy.backoff == 2
    saved = tomllib.loads(settings_file.read_text())
    assert saved["retry_on"] == ["timeout", "server-error"]
    assert saved["retry_backoff"] == 2
