"""The keys of every screen and what each screen shows.

The keys are read from the same bindings the app runs on, through the keymap in force, so a
key changed in the `[keymap]` settings is shown as it now is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from ..bindings import ACTIONS, Action
from .add_modal import AddModal
from .confirm_quit import ConfirmQuit
from .confirm_remove import ConfirmRemove
from .detail import DetailScreen
from .settings import SettingsScreen

if TYPE_CHECKING:
    from ..app import LadenApp

SCREENS: tuple[tuple[str, str], ...] = (
    ("Queue", "The first screen. The top line shows the total speed, how many downloads are "
     "active, queued, paused, done and failed, and the free space on the disk where the "
     "selected download is saved. Below, one row per download in queue order: its size, a "
     "progress bar, percent, speed, time left, state ('retry HH:MM' while it waits to try "
     "again), source (http, ftp, s3, gs, az, hf) and open connections. Downloads finished in "
     "earlier sessions are folded away; the line under the queue says how many."),
    ("Details", "One download: its state, speed and time left on the top line; the segment "
     "map (each character a slice of the file, coloured by the connection fetching it, green "
     "once on disk); every open connection with its range, bytes fetched, speed, retries and "
     "the server's last answer; the speed over the last minutes; and the facts: address, "
     "destination, size, validators, checksums, options, times, retries and errors."),
    ("Settings", "Every setting of config.toml with its help text, the theme and the keys "
     "(the [keymap] table). A mistake is shown under its field; saving applies the settings "
     "at once."),
    ("Command palette", "Every action above by name, with its key; type a few letters of "
     "what you want."),
)

SCREEN_KEYS: tuple[tuple[str, list[BindingType]], ...] = (
    ("Details", DetailScreen.BINDINGS),
    ("Settings", SettingsScreen.BINDINGS),
    ("Add dialog", AddModal.BINDINGS),
    ("Remove dialog", ConfirmRemove.BINDINGS),
    ("Quit dialog", ConfirmQuit.BINDINGS),
)


def _where(action: Action) -> str:
    if action.everywhere:
        return "everywhere"
    return "queue, details" if action.in_details else "queue"


class HelpScreen(Screen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Back", id="help_close")]

    def compose(self) -> ComposeResult:
        yield Static("Help  [dim]laden, a download manager[/dim]", id="help-title")
        with VerticalScroll(id="help-body"):
            yield Label("Keys", classes="section")
            yield Static(self._action_table(), id="help-keys")
            yield Label("Keys of the other screens", classes="section")
            yield Static(self._screen_table(), id="help-screen-keys")
            yield Label("Screens", classes="section")
            for name, text in SCREENS:
                yield Static(Text.assemble((name, "bold"), "  ", text), classes="help-screen")
        yield Footer()

    @property
    def _app(self) -> LadenApp:
        return cast("LadenApp", self.app)

    def _action_table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2, 0, 0))
        for column in ("Key", "Action", "Where"):
            table.add_column(column, no_wrap=column != "Action")
        table.add_row(self.app.get_key_display(Binding(self.app.COMMAND_PALETTE_BINDING, "")),
                      "The command palette: every action by name", "everywhere")
        for action in ACTIONS:
            table.add_row(self._app.key_display(action.id, action.key), action.help,
                          _where(action))
        return table

    def _screen_table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2, 0, 0))
        for column in ("Key", "Action", "Where"):
            table.add_column(column, no_wrap=column != "Action")
        table.add_row(self._app.key_display("", "home, end"), "First, last download", "queue")
        for where, bindings in SCREEN_KEYS:
            for binding in bindings:
                if isinstance(binding, Binding):
                    table.add_row(self._app.key_display(binding.id or "", binding.key),
                                  binding.description, where)
        return table

    def action_close(self) -> None:
        self.dismiss()
