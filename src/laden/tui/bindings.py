"""The keys of the app, each with an id so the `[keymap]` table in the settings can change it.

One list serves the app's bindings, the footer, the command palette and the settings screen's
key section, so a new action shows up everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    id: str
    key: str
    description: str
    help: str
    show: bool = True
    needs_download: bool = True
    """Acts on the selected download (the one under the cursor, or the one in the details)."""
    in_details: bool = True
    """Works on the detail screen too."""
    everywhere: bool = False
    """Works on every screen, the settings and the dialogs included."""

    @property
    def binding(self) -> Binding:
        return Binding(self.key, self.id, self.description, show=self.show, id=self.id)


ACTIONS: tuple[Action, ...] = (
    Action("add", "a", "Add", "Add a download: address, destination, connections",
           needs_download=False, in_details=False),
    Action("pause_resume", "space", "Pause/Resume",
           "Pause the selected download, or resume it"),
    Action("pause", "p", "Pause", "Pause the selected download", show=False),
    Action("resume", "r", "Resume", "Resume the selected download", show=False),
    Action("pause_all", "P", "Pause all", "Pause every download", needs_download=False),
    Action("resume_all", "R", "Resume all", "Resume every unfinished download",
           needs_download=False),
    Action("verify", "v", "Verify", "Check the finished file's size and checksum again"),
    Action("remove", "delete", "Remove", "Remove the selected download (and maybe its file)"),
    Action("details", "enter", "Details", "Open the detail screen of the selected download",
           in_details=False),
    Action("settings", "s", "Settings", "Edit the settings (saved to config.toml)",
           needs_download=False, in_details=False),
    Action("move_up", "plus", "Up", "Move the selected download up the queue",
           show=False, in_details=False),
    Action("move_down", "minus", "Down", "Move the selected download down the queue",
           show=False, in_details=False),
    Action("history", "h", "History", "Show or hide the downloads finished in earlier sessions",
           show=False, needs_download=False, in_details=False),
    Action("help", "question_mark,f1", "Help", "Help: the keys and what each screen shows",
           needs_download=False, everywhere=True),
    Action("quit", "q", "Quit", "Quit laden; unfinished downloads resume next time",
           needs_download=False),
)

BY_ID = {action.id: action for action in ACTIONS}

BINDINGS: list[BindingType] = [action.binding for action in ACTIONS]
