"""The main screen: the header line, the queue and the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...core.snapshots import DownloadInfo
from ..widgets.header_bar import HeaderBar, Summary
from ..widgets.queue_table import QueueTable

if TYPE_CHECKING:
    from ..app import LadenApp

EMPTY_HINT = "No downloads yet. Press [b]a[/b] to add an address, or start laden with URLs."


class QueueScreen(Screen[None]):
    summary: reactive[Summary] = reactive(Summary)

    def compose(self) -> ComposeResult:
        yield HeaderBar().data_bind(QueueScreen.summary)
        yield QueueTable(id="queue")
        yield Static(EMPTY_HINT, id="empty-hint")
        yield Static("", id="history-hint")
        yield Footer()

    @property
    def table(self) -> QueueTable:
        return self.query_one(QueueTable)

    @property
    def download_id(self) -> int | None:
        """The download the keys act on: the one under the cursor. None while the screen is
        taken down (the app's timer may still ask when the table is already gone)."""
        if not self.is_mounted:
            return None
        tables = self.query(QueueTable)
        return tables.first().selected_id if tables else None

    def on_mount(self) -> None:
        # The app may have heard of downloads before this screen was there to show them.
        self.table.set_downloads(cast("LadenApp", self.app).downloads.values())
        self._update_hint()

    def show(self, info: DownloadInfo) -> None:
        if (table := self._live_table()) is not None:
            table.update_download(info)
            self._update_hint()

    def forget(self, download_id: int) -> None:
        if (table := self._live_table()) is not None:
            table.remove_download(download_id)
            self._update_hint()

    def _live_table(self) -> QueueTable | None:
        """The table, unless the app is on its way out: the engine's events keep coming while
        the app exits, after this screen's widgets are gone (or going) but before it is
        unmounted."""
        if not (self.is_mounted and self.is_attached):
            return None
        tables = self.query(QueueTable)
        return tables.first() if tables else None

    def set_show_history(self, show: bool) -> None:
        if (table := self._live_table()) is not None:
            table.set_show_history(show)
            self._update_hint()

    def _update_hint(self) -> None:
        table = self.table
        self.query_one("#empty-hint").display = table.row_count == 0 and not table.folded
        hint = self.query_one("#history-hint", Static)
        hint.display = bool(table.folded)
        if table.folded:
            key = cast("LadenApp", self.app).key_display("history", "h")
            one = table.folded == 1
            count = f"{table.folded} download{'' if one else 's'} finished in earlier sessions"
            hint.update(Text.assemble(f"{count} not shown; ", (key, "bold"),
                                      f" shows {'it' if one else 'them'}"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # The header's free space is the selected download's disk: follow the cursor.
        cast("LadenApp", self.app).refresh_summary()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter (the table's own key) or a click on the selected row opens the details.
        event.stop()
        await self.app.run_action("details")
