"""The queue: one row per download, keyed by its id and updated cell by cell.

Rows are added and removed on the engine's Added and Removed events and otherwise only change
through `update_cell`, and only the cells whose text changed, so a busy queue of a thousand
downloads costs a redraw of the visible rows, never a rebuild.

Downloads finished before this session began are history: folded away (no row) until asked
for, so a long history never buries what is running. The rows that stay keep queue order, the
order in which downloads start, and never jump while being watched.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from ...core.printable import printable
from ...core.snapshots import DownloadInfo
from ...core.states import State
from ...core.units import format_eta, format_rate, format_size
from .styles import component_style

BAR_WIDTH = 16
NAME_MIN_WIDTH = 12

# (key, label, width); the name column takes whatever width is left.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "#", 4),
    ("name", "Name", 0),
    ("size", "Size", 10),
    ("bar", "Progress", BAR_WIDTH),
    ("percent", "%", 6),
    ("speed", "Speed", 11),
    ("eta", "ETA", 7),
    ("state", "State", 11),
    ("source", "Src", 4),
    ("connections", "Conn", 4),
)

_BAR_STYLE = {
    State.DONE: "bar-done",
    State.PAUSED: "bar-paused",
    State.FAILED: "bar-failed",
    State.CANCELLED: "bar-failed",
}


class QueueTable(DataTable[Text | str]):
    """The downloads in queue order; `selected_id` is the one under the cursor."""

    COMPONENT_CLASSES = {
        "queue-table--bar-active",
        "queue-table--bar-done",
        "queue-table--bar-paused",
        "queue-table--bar-failed",
        "queue-table--bar-empty",
        *(f"queue-table--state-{state.value}" for state in State),
    }

    # Home and End go to the first and last download (the table's own keys scroll sideways).
    BINDINGS = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    DEFAULT_CSS = """
    QueueTable {
        height: 1fr;
        & > .queue-table--bar-active { color: $primary; }
        & > .queue-table--bar-done { color: $success; }
        & > .queue-table--bar-paused { color: $warning; }
        & > .queue-table--bar-failed { color: $error; }
        & > .queue-table--bar-empty { color: $foreground 15%; }
        & > .queue-table--state-queued { color: $foreground-muted; }
        & > .queue-table--state-connecting { color: $accent; }
        & > .queue-table--state-downloading { color: $primary; text-style: bold; }
        & > .queue-table--state-uploading { color: $primary; text-style: bold; }
        & > .queue-table--state-paused { color: $warning; }
        & > .queue-table--state-verifying { color: $accent; }
        & > .queue-table--state-done { color: $success; }
        & > .queue-table--state-failed { color: $error; text-style: bold; }
        & > .queue-table--state-cancelled { color: $foreground-muted; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[int, dict[str, Text | str]] = {}
        self._infos: dict[int, DownloadInfo] = {}
        self._last_position = float("-inf")
        """The highest position shown: a row that comes before it needs a sort."""
        self._name_width = 30
        self._folded: dict[int, DownloadInfo] = {}
        """History not shown: finished before `session_start`, while `show_history` is off."""
        self.session_start = time.time()
        self.show_history = False

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width or self._name_width)
        # New theme colours live in the component styles: draw every cell again.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw_all())

    # -- rows --------------------------------------------------------------------------------

    @property
    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    def set_downloads(self, infos: Iterable[DownloadInfo]) -> None:
        """Show these downloads (the start of a session), in queue order."""
        for info in sorted(infos, key=lambda i: i.position):
            self.add_download(info)

    def add_download(self, info: DownloadInfo) -> None:
        if info.id in self._shown:
            self.update_download(info)
            return
        if self._fold(info):
            return
        if self._add_row(info):
            self._sort()

    def _add_row(self, info: DownloadInfo) -> bool:
        """Add the row at the end; whether it belongs further up (then the table needs a sort)."""
        self._folded.pop(info.id, None)
        # Against the highest position, not every row: a pass over the rows per row made
        # opening a history of 4,400 downloads take seconds.
        out_of_order = info.position < self._last_position
        self._last_position = max(self._last_position, info.position)
        cells = self._cells(info)
        self._shown[info.id] = cells
        self._infos[info.id] = info
        self.add_row(*(cells[key] for key, _, _ in COLUMNS), key=str(info.id))
        return out_of_order

    def update_download(self, info: DownloadInfo) -> None:
        shown = self._shown.get(info.id)
        if shown is None:
            self.add_download(info)
            return
        if self._fold(info):
            return
        cells = self._cells(info)
        row_key = RowKey(str(info.id))
        for key, value in cells.items():
            if shown.get(key) != value:
                self.update_cell(row_key, ColumnKey(key), value)
        self._shown[info.id] = cells
        moved = self._infos[info.id].position != info.position
        self._infos[info.id] = info
        self._last_position = max(self._last_position, info.position)
        if moved:
            self._sort()

    def remove_download(self, download_id: int) -> None:
        self._folded.pop(download_id, None)
        if self._shown.pop(download_id, None) is None:
            return
        del self._infos[download_id]
        self.remove_row(str(download_id))

    # -- history -----------------------------------------------------------------------------

    @property
    def folded(self) -> int:
        """How many downloads of the history are not shown."""
        return len(self._folded)

    def is_history(self, info: DownloadInfo) -> bool:
        return (info.state is State.DONE and info.finished is not None
                and info.finished < self.session_start)

    def _fold(self, info: DownloadInfo) -> bool:
        """Fold `info` away (removing its row) when it is history not asked for; whether it was."""
        if self.show_history or not self.is_history(info):
            return False
        if info.id in self._shown:
            self.remove_download(info.id)
        self._folded[info.id] = info
        return True

    def set_show_history(self, show: bool) -> None:
        """Show the history among the other downloads, or fold it away again."""
        self.show_history = show
        if show:
            folded = sorted(self._folded.values(), key=lambda i: i.position)
            # One sort for all of them, not one per row.
            if any([self._add_row(info) for info in folded]):
                self._sort()
        else:
            for info in list(self._infos.values()):
                self._fold(info)

    def select(self, download_id: int) -> None:
        if download_id in self._shown:
            self.move_cursor(row=self.get_row_index(str(download_id)))

    def redraw_all(self) -> None:
        """Draw every cell again: the colours are baked into the cells' text."""
        for download_id, info in list(self._infos.items()):
            self._shown[download_id] = {}
            self.update_download(info)

    def _sort(self) -> None:
        selected = self.selected_id
        infos = self._infos
        self.sort("id", key=lambda cell: infos[int(str(cell))].position)
        if selected is not None:
            self.select(selected)

    # -- layout ------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        fixed = sum(width + 2 * self.cell_padding for key, _, width in COLUMNS if key != "name")
        # Two cells for the vertical scrollbar, so a long queue never pushes columns off.
        width = max(NAME_MIN_WIDTH, event.size.width - fixed - 2 * self.cell_padding - 2)
        if width == self._name_width:
            return
        self._name_width = width
        column = self.columns.get(ColumnKey("name"))
        if column is not None:
            column.width = width
            # DataTable has no public call to resize a column; this makes it measure again.
            self._require_update_dimensions = True
            self.refresh(layout=True)

    # -- cells -------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return component_style(self, f"queue-table--{name}")

    def _cells(self, info: DownloadInfo) -> dict[str, Text | str]:
        fraction = info.fraction
        active = info.state.is_moving or info.state is State.CONNECTING
        return {
            "id": str(info.id),
            "name": Text(shown_name(info), no_wrap=True, overflow="ellipsis"),
            "size": format_size(info.size) if info.size is not None else "?",
            "bar": self._bar(info),
            "percent": f"{fraction * 100:5.1f}%" if fraction is not None else "",
            "speed": format_rate(info.speed) if active else "",
            "eta": format_eta(info.eta) if active and info.eta is not None else "",
            "state": self._state(info),
            "source": info.source,
            "connections": str(len(info.connections)) if info.connections else "",
        }

    def _state(self, info: DownloadInfo) -> Text:
        """The state, or when it waits to try again, until when (the detail screen says why)."""
        if info.retry_at is not None:
            until = time.strftime("%H:%M", time.localtime(info.retry_at))
            return Text(f"retry {until}", style=self._style("state-paused"))
        return Text(info.state.value, style=self._style(f"state-{info.state.value}"))

    def _bar(self, info: DownloadInfo) -> Text:
        """A thin bar like rich's: heavy line for the bytes done, a faint one for the rest."""
        fraction = info.fraction or 0.0
        halves = int(fraction * BAR_WIDTH * 2)
        full, half = divmod(halves, 2)
        done_style = self._style(_BAR_STYLE.get(info.state, "bar-active"))
        bar = Text(no_wrap=True)
        bar.append("━" * full, done_style)
        if half:
            bar.append("╸", done_style)
        rest = BAR_WIDTH - full - half
        if rest:
            bar.append("━" * rest, self._style("bar-empty"))
        return bar


UPLOAD_MARK = "↑ "
"""Before an upload's name: which way a row's bytes go (a download's row has no mark)."""


def shown_name(info: DownloadInfo) -> str:
    """A row's name: a download's file name; an upload's, marked, with where it goes."""
    if info.direction == "upload":
        return printable(f"{UPLOAD_MARK}{info.name} → {info.url}")
    return printable(info.name or info.url)
