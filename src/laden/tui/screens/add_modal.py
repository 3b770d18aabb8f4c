"""Add a download (an address, where to put it) or an upload (a local file or folder, where it
goes, what to do when the name is taken), with its connections; returns the new ids.

The modal stays open until the engine has accepted the request, so a mistake (a typo in the
scheme, a bad folder, a file that is not there) is shown next to the fields instead of
disappearing with the dialog. The services an upload may go to are those of the known-sources
table with an uploader, so a new uploader shows here without a change to the dialog.
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
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from ...core.known_sources import KNOWN_SOURCES
from ...core.printable import printable
from ...core.upload_policies import CONFLICTS, ON_CHANGE
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


@dataclass(frozen=True)
class UploadRequest:
    local: str
    """A file or a folder (its files keep their layout under `remote`)."""
    remote: str
    conflict: str
    connections: int | None
    on_change: str = ON_CHANGE[0]
    """What to do when the local file changes before the commit: stop, or restart."""


def upload_schemes() -> list[str]:
    """The schemes of the services laden can upload to, in the table's order."""
    return [scheme for source in KNOWN_SOURCES if source.uploader is not None
            for scheme in source.schemes]


CONFLICT_WORDS = {
    "overwrite": "overwrite it",
    "skip": "skip it if the same",
    "fail": "fail",
}
"""Short: the two choices of an upload sit side by side. "The same": the size and checksum."""

ON_CHANGE_WORDS = {
    "stop": "stop, commit nothing",
    "restart": "start again",
}


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
        schemes = upload_schemes()
        with Vertical(id="add-dialog", classes="dialog"):
            yield Label("Add a transfer", classes="dialog-title")
            with RadioSet(id="add-direction"):
                yield RadioButton("Download", value=True, id="add-download")
                yield RadioButton("Upload", id="add-upload", disabled=not schemes)
            with Vertical(id="add-download-fields", classes="add-fields"):
                yield Label("Address (http, https, ftp, s3, gs, az, hf)")
                yield Input(placeholder="https://example.com/file.iso", id="add-url")
                yield Label("Save to (a folder, or a file path)")
                yield Input(placeholder=self._default_folder, id="add-dest")
            with Vertical(id="add-upload-fields", classes="add-fields"):
                yield Label("Local file or folder")
                yield Input(placeholder="~/checkpoints/step-1000", id="add-local")
                yield Label(f"Upload to ({', '.join(schemes) or 'no service yet'}: a key, or "
                            "a prefix ending in /)")
                yield Input(placeholder=f"{(schemes or ['s3'])[0]}://bucket/folder/",
                            id="add-remote")
                with Horizontal(id="add-upload-choices"):
                    with Vertical():
                        yield Label("If the name is taken")
                        yield Select([(CONFLICT_WORDS.get(c, c), c) for c in CONFLICTS],
                                     value=CONFLICTS[0], allow_blank=False, id="add-conflict")
                    with Vertical():
                        yield Label("If the file changes meanwhile")
                        yield Select([(ON_CHANGE_WORDS.get(c, c), c) for c in ON_CHANGE],
                                     value=ON_CHANGE[0], allow_blank=False,
                                     id="add-on-change")
            yield Label("Connections")
            yield Input(placeholder=str(self._default_connections), type="integer",
                        id="add-connections")
            yield Static("", id="add-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="add-cancel")
                yield Button("Add", variant="primary", id="add-ok")

    def on_mount(self) -> None:
        self._show_fields()
        self.query_one("#add-url", Input).focus()

    @property
    def uploading(self) -> bool:
        return self.query_one("#add-upload", RadioButton).value

    @on(RadioSet.Changed, "#add-direction")
    def _show_fields(self) -> None:
        uploading = self.uploading
        self.query_one("#add-download-fields").display = not uploading
        self.query_one("#add-upload-fields").display = uploading
        self.query_one("#add-error", Static).update("")
        self.query_one("#add-ok", Button).label = "Upload" if uploading else "Add"
        self._offered = None

    def request(self) -> AddRequest | UploadRequest | str:
        """The fields as a request, or the reason they are not one yet."""
        text = self.query_one("#add-connections", Input).value.strip()
        connections = int(text) if text.lstrip("-").isdigit() else None
        if text and connections is None:
            return f"Connections must be a whole number, not {text!r}."
        if self.uploading:
            local = self.query_one("#add-local", Input).value.strip()
            remote = self.query_one("#add-remote", Input).value.strip()
            if not local:
                return "Enter the local file or folder to upload."
            if not remote:
                return (f"Enter where it goes, such as "
                        f"{self.query_one('#add-remote', Input).placeholder}")
            conflict = self.query_one("#add-conflict", Select).value
            on_change = self.query_one("#add-on-change", Select).value
            return UploadRequest(local, remote, str(conflict), connections, str(on_change))
        url = self.query_one("#add-url", Input).value.strip()
        if not url:
            return "Enter the address of the file to download."
        dest = self.query_one("#add-dest", Input).value.strip() or None
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
        self.query_one("#add-error", Static).update("Adding…")
        self.query_one("#add-ok", Button).disabled = True
        app = cast("LadenApp", self.app)
        if isinstance(request, UploadRequest):
            app.add_uploads(request, on_added=self._added, on_error=self.show_error)
            return
        self._sent = request
        app.add_downloads(request, on_added=self._added, on_error=self.show_error)

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
        self.query_one(self._field_to_fix(), Input).focus()

    def _field_to_fix(self) -> str:
        if not self.uploading:
            return "#add-url"
        local = self.query_one("#add-local", Input).value.strip()
        remote = self.query_one("#add-remote", Input).value.strip()
        return "#add-remote" if local and not remote else "#add-local"

    @on(Button.Pressed, "#add-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
