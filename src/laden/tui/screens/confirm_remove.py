"""Confirm removing a download (optionally with its finished file) or an upload; returns the
choice."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from ...core.printable import printable
from ...core.snapshots import DownloadInfo
from ...core.states import State


@dataclass(frozen=True)
class RemoveChoice:
    download_id: int
    delete_file: bool


class ConfirmRemove(ModalScreen[RemoveChoice | None]):
    BINDINGS = [
        Binding("escape,n", "cancel", "Keep", id="remove_cancel"),
        Binding("y", "confirm", "Remove", id="remove_confirm"),
    ]

    def __init__(self, info: DownloadInfo) -> None:
        super().__init__()
        self._info = info

    def compose(self) -> ComposeResult:
        info = self._info
        finished = info.state is State.DONE
        with Vertical(id="remove-dialog", classes="dialog"):
            yield Label(f"Remove [b]{escape(printable(info.name))}[/b] from the queue?",
                        classes="dialog-title")
            if info.direction == "upload":
                # An upload's file is the user's own: never offered for deletion.
                yield Static("The local file and the uploaded object stay." if finished else
                             "The upload stops and the parts sent so far are dropped at the "
                             "service; the local file stays.", classes="muted")
            elif finished:
                yield Checkbox(f"Also delete the file {escape(printable(info.dest))}",
                               id="remove-file")
            else:
                yield Static("The download stops and its partial file is deleted.",
                             classes="muted")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep", id="remove-cancel")
                yield Button("Remove", variant="error", id="remove-ok")

    def on_mount(self) -> None:
        self.query_one("#remove-cancel", Button).focus()

    @on(Button.Pressed, "#remove-ok")
    def action_confirm(self) -> None:
        boxes = self.query("#remove-file").results(Checkbox)
        delete_file = any(box.value for box in boxes)
        self.dismiss(RemoveChoice(self._info.id, delete_file))

    @on(Button.Pressed, "#remove-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
