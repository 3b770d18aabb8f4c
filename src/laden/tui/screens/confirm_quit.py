"""Ask before quitting while downloads are running; returns True to quit."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


def question(running: int) -> str:
    if running == 1:
        return "1 download is running."
    return f"{running} downloads are running."


class ConfirmQuit(ModalScreen[bool]):
    # q again quits: the question is asked once, and a second q is the answer.
    BINDINGS = [
        Binding("escape,n", "stay", "Stay", id="quit_cancel"),
        Binding("y,q", "quit_now", "Quit", id="quit_confirm"),
    ]

    def __init__(self, running: int) -> None:
        super().__init__()
        self._how_many = running

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label(f"{question(self._how_many)} Quit laden?", classes="dialog-title")
            yield Static("They stop now, keep every byte already written and resume by "
                         "themselves the next time you start laden.", classes="muted")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stay", id="quit-cancel")
                yield Button("Quit", variant="warning", id="quit-ok")

    def on_mount(self) -> None:
        self.query_one("#quit-ok", Button).focus()

    @on(Button.Pressed, "#quit-ok")
    def action_quit_now(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#quit-cancel")
    def action_stay(self) -> None:
        self.dismiss(False)
