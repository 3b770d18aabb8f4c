"""Ask for an address, where to put it and how many connections; returns the new ids.

The modal stays open until the engine has accepted the address, so a mistake (a typo in the
scheme, a bad folder) is shown next to the fields instead of disappearing with the dialog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ...core.printable import printable
from ...engine.reruns import FinishedCopy

if TYPE_CHECKING:
    from ..app import LadenApp


@dataclass(frozen=True)
class AddRequest:
    url: str
    dest: str | None
    connections: int | None
    again: bool = False
    """Download it even if it was downloaded there already."""


class AddModal(ModalScreen[list[int] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="add_cancel")]

    def __init__(self, default_folder: str, default_connections: int) -> None:
        super().__init__()
        self._default_folder = default_folder
        self._default_connections = default_connections
        self._sent: AddRequest | None = None
        self._offered: AddRequest | None = None
        """The request found already downloaded: Add again means download it again."""

    def compose(self) -> ComposeResult:
        with Vertical(id="add-dialog", classes="dialog"):
            yield Label("Add a download", classes="dialog-title")
            yield Label("Address (http, https, ftp, s3, gs, az, hf)")
            yield Input(placeholder="https://example.com/file.iso", id="add-url")
            yield Label("Save to (a folder, or a file path)")
            yield Input(placeholder=self._default_folder, id="add-dest")
            yield Label("Connections")
            yield Input(placeholder=str(self._default_connections), type="integer",
                        id="add-connections")
            yield Static("", id="add-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="add-cancel")
                yield Button("Add", variant="primary", id="add-ok")

    def request(self) -> AddRequest | str:
        """The fields as a request, or the reason they are not one yet."""
        url = self.query_one("#add-url", Input).value.strip()
        if not url:
            return "Enter the address of the file to download."
        dest = self.query_one("#add-dest", Input).value.strip() or None
        text = self.query_one("#add-connections", Input).value.strip()
        connections = int(text) if text.lstrip("-").isdigit() else None
        if text and connections is None:
            return f"Connections must be a whole number, not {text!r}."
        request = AddRequest(url, dest, connections)
        return AddRequest(url, dest, connections, again=True) if request == self._offered \
            else request

    @on(Input.Submitted)
    @on(Button.Pressed, "#add-ok")
    def submit(self) -> None:
        request = self.request()
        if isinstance(request, str):
            self.show_error(request)
            return
        self._sent = request
        self.query_one("#add-error", Static).update("Adding…")
        self.query_one("#add-ok", Button).disabled = True
        cast("LadenApp", self.app).add_downloads(
            request, on_added=self._added, on_error=self.show_error
        )

    def _added(self, result: list[int] | FinishedCopy) -> None:
        if not isinstance(result, FinishedCopy):
            self.dismiss(result)
            return
        # Offer the choice: Cancel keeps the file, Add once more downloads it again.
        self._offered = self._sent
        self.query_one("#add-ok", Button).disabled = False
        self.query_one("#add-ok", Button).label = "Download again"
        self.query_one("#add-error", Static).update(Text(printable(
            f"Already downloaded: {result.info.dest} ({result.checked}).")))

    def show_error(self, message: str) -> None:
        self.query_one("#add-ok", Button).disabled = False
        # The engine's words, often quoting the address typed: text, never markup.
        self.query_one("#add-error", Static).update(Text(printable(message)))
        self.query_one("#add-url", Input).focus()

    @on(Button.Pressed, "#add-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
