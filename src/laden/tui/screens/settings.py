"""Edit config.toml: one field per setting with its help text, the theme and the keys.

Each value is checked on its own so a mistake is shown under the field it belongs to. Saving
writes the file (never over a broken one: `settings.save` refuses, and the reason is shown) and
hands the new settings to the running engine, so limits and concurrency change at once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from ...core.config import CONFLICT_POLICIES, DIRECT_IO_MODES, Config, field_help
from ...core.errors import LadenError
from ...core.printable import printable
from ..bindings import ACTIONS
from ..widgets.shown_path import home_relative

if TYPE_CHECKING:
    from ..app import LadenApp

SIZE_FIELDS = ("limit_rate", "min_segment_size", "buffer_size")
CHOICES = {"conflict": CONFLICT_POLICIES, "direct_io": DIRECT_IO_MODES}
GENERAL = ""
"""The key of a problem with the settings as a whole rather than one field."""
THEME_HELP = "Colours of the app; changes as you pick, kept when you save."
KEYMAP_HELP = ("Keys for each action, e.g. ctrl+k or f5; several separated by commas. "
               "Empty: the default shown.")


def format_bytes(value: int | None) -> str:
    """A byte count the way people type it back (5M, 512K), exact."""
    if value is None:
        return ""
    for suffix, factor in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if value and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


def shown(message: str) -> Text:
    """A message for a Static: printable, and never read as markup (it may quote a value)."""
    return Text(printable(message, newlines=True))


def _fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(Config) if f.name != "extra"]


class SettingsScreen(Screen[bool]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings_save"),
        Binding("escape", "cancel", "Back", id="settings_cancel"),
    ]

    def __init__(self, config: Config, path: str, problem: str | None = None) -> None:
        super().__init__()
        self._config = config
        self._path = path
        self._problem = problem

    # -- building ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        helps = field_help()
        yield Static(f"Settings  [dim]{escape(printable(home_relative(self._path)))}[/dim]",
                     id="settings-title", markup=True)
        if self._problem:
            yield Static(shown(self._problem), id="settings-problem", classes="error")
        with VerticalScroll(id="settings-body"):
            for field in _fields():
                with Horizontal(classes="setting", id=f"setting-{field.name}"):
                    with Vertical(classes="setting-text"):
                        yield Label(field.name, classes="setting-name")
                        yield Static(helps.get(field.name, ""), classes="setting-help")
                        yield Static("", id=f"error-{field.name}", classes="setting-error")
                    with Container(classes="setting-editor"):
                        yield self._editor(field.name, getattr(self._config, field.name))
            with Horizontal(classes="setting", id="setting-theme"):
                with Vertical(classes="setting-text"):
                    yield Label("theme", classes="setting-name")
                    yield Static(THEME_HELP, classes="setting-help")
                themes = sorted(self.app.available_themes)
                with Container(classes="setting-editor"):
                    yield Select([(name, name) for name in themes], value=self.app.theme,
                                 allow_blank=False, compact=True, id="field-theme")
            yield Label("keymap", classes="setting-name section")
            yield Static(KEYMAP_HELP, classes="setting-help")
            keymap = self._config.extra.get("keymap")
            keymap = keymap if isinstance(keymap, dict) else {}
            for action in ACTIONS:
                with Horizontal(classes="key-setting"):
                    yield Label(action.id, classes="key-name")
                    yield Input(str(keymap.get(action.id, "")), placeholder=action.key,
                                compact=True, id=f"key-{action.id}", classes="key-input")
                    yield Static(action.help, classes="setting-help key-help")
        with Horizontal(id="settings-buttons"):
            yield Static("", id="settings-status", classes="error")
            yield Button("Cancel", compact=True, id="settings-cancel")
            yield Button("Save", variant="primary", compact=True, id="settings-save")
        yield Footer()

    def _editor(self, name: str, value: Any) -> Widget:
        widget_id = f"field-{name}"
        if isinstance(value, bool):
            return Switch(value, id=widget_id)
        if name in CHOICES:
            return Select([(p, p) for p in CHOICES[name]], value=value, allow_blank=False,
                          compact=True, id=widget_id)
        if name in SIZE_FIELDS:
            placeholder = "unlimited" if name == "limit_rate" else ""
            return Input(format_bytes(value), placeholder=placeholder, compact=True, id=widget_id)
        if isinstance(value, tuple):  # retry_on: names, read back by `retry.parse_kinds`
            return Input(", ".join(value), placeholder="none", compact=True, id=widget_id)
        if isinstance(value, int):
            return Input(str(value), type="integer", compact=True, id=widget_id)
        if isinstance(value, float):
            return Input(f"{value:g}", type="number", compact=True, id=widget_id)
        placeholder = "your Downloads folder" if name == "download_dir" else ""
        return Input(str(value), placeholder=placeholder, compact=True, id=widget_id)

    def on_mount(self) -> None:
        self._original_theme = self.app.theme
        self.query_one(f"#field-{_fields()[0].name}").focus()

    # -- reading and checking ----------------------------------------------------------------

    def _value(self, name: str) -> Any:
        widget = self.query_one(f"#field-{name}")
        if isinstance(widget, Switch):
            return widget.value
        if isinstance(widget, Select):
            return widget.value
        text = cast(Input, widget).value.strip()
        kind = type(getattr(Config(), name))
        if name in SIZE_FIELDS or kind is str:
            return text
        if kind is int:
            return int(text) if text.lstrip("-").isdigit() else text
        try:
            return float(text)
        except ValueError:
            return text

    def read(self) -> tuple[Config | None, dict[str, str]]:
        """The settings in the form, or the problems by field name."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for field in _fields():
            value = self._value(field.name)
            if value == "" and field.name == "limit_rate":
                continue  # empty means unlimited; TOML has no null
            try:
                Config.from_mapping({field.name: value})
            except LadenError as exc:
                errors[field.name] = str(exc)
            except (TypeError, ValueError) as exc:
                errors[field.name] = f"{field.name}: {exc}"
            values[field.name] = value
        if errors:
            return None, errors
        extra = dict(self._config.extra)
        extra["theme"] = str(self.query_one("#field-theme", Select).value)
        keymap = {action.id: self.query_one(f"#key-{action.id}", Input).value.strip()
                  for action in ACTIONS}
        extra["keymap"] = {key: value for key, value in keymap.items() if value}
        if not extra["keymap"]:
            del extra["keymap"]
        try:
            return Config.from_mapping({**values, **extra}), {}
        except LadenError as exc:  # each value was fine alone; say what the set lacks
            return None, {GENERAL: str(exc)}

    def show_errors(self, errors: dict[str, str]) -> None:
        for field in _fields():
            label = self.query_one(f"#error-{field.name}", Static)
            label.update(shown(errors.get(field.name, "")))
            self.query_one(f"#setting-{field.name}").set_class(field.name in errors, "-invalid")
        status = self.query_one("#settings-status", Static)
        status.update(shown(errors.get(GENERAL) or
                            (f"{len(errors)} setting(s) need fixing" if errors else "")))
        first = next((f.name for f in _fields() if f.name in errors), None)
        if first is not None:
            self.query_one(f"#field-{first}").focus()

    # -- actions -----------------------------------------------------------------------------

    @on(Select.Changed, "#field-theme")
    def preview_theme(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.app.theme = event.value

    @on(Button.Pressed, "#settings-save")
    def action_save(self) -> None:
        config, errors = self.read()
        self.show_errors(errors)
        if config is None:
            return
        app = cast("LadenApp", self.app)
        problem = app.save_settings(config)
        if problem is not None:
            self.query_one("#settings-status", Static).update(shown(problem))
            return
        self.dismiss(True)

    @on(Button.Pressed, "#settings-cancel")
    def action_cancel(self) -> None:
        self.app.theme = self._original_theme
        self.dismiss(False)
