"""The live connections of one transfer: range (an upload's part), bytes, speed, retries and
last status.

Rows are keyed by connection number and updated in place; the swatch in the first column has
the connection's colour in the segment map, so a row and its stretch of the map match up.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from ...core.printable import printable
from ...core.snapshots import ConnectionInfo, DownloadInfo
from ...core.units import format_rate, format_size
from .segment_map import PALETTE_SIZE, connection_class, connection_css
from .styles import component_style

COLUMNS = (("number", "#"), ("range", "Range"), ("left", "Left"), ("bytes", "Fetched"),
           ("speed", "Speed"), ("retries", "Retries"), ("status", "Last status"))
UPLOAD_COLUMNS = (("number", "#"), ("range", "Part"), ("left", "To read"), ("bytes", "Read"),
                  ("speed", "Speed"), ("retries", "Retries"), ("status", "Last status"))
"""An upload's connection reads its part from the file, then sends it whole: its bytes are
those of the part it is on, as the map draws them."""


class ConnectionTable(DataTable[Text | str]):
    # The same colours as the segment map, read through this widget's own component classes.
    COMPONENT_CLASSES = {connection_class(n) for n in range(PALETTE_SIZE)}

    DEFAULT_CSS = """
    ConnectionTable {
        height: auto;
        max-height: 12;
    }
    """ + connection_css("ConnectionTable")

    info: reactive[DownloadInfo | None] = reactive(None)

    def __init__(self, *, upload: bool = False) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True)
        self._upload = upload
        self._columns = UPLOAD_COLUMNS if upload else COLUMNS
        self._shown: dict[int, dict[str, Text | str]] = {}

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)
        self.watch_info(self.info)

    def watch_info(self, info: DownloadInfo | None) -> None:
        if not self.columns:
            return
        live = {c.number: c for c in info.connections} if info is not None else {}
        for number in [n for n in self._shown if n not in live]:
            del self._shown[number]
            self.remove_row(str(number))
        for number, connection in sorted(live.items()):
            cells = self._cells(connection)
            shown = self._shown.get(number)
            if shown is None:
                self.add_row(*cells.values(), key=str(number))
            else:
                for key, value in cells.items():
                    if shown.get(key) != value:
                        self.update_cell(RowKey(str(number)), ColumnKey(key), value,
                                         update_width=True)
            self._shown[number] = cells

    def _cells(self, connection: ConnectionInfo) -> dict[str, Text | str]:
        style = component_style(self, connection_class(connection.number))
        return {
            "number": Text.assemble(("█ ", style), str(connection.number)),
            "range": f"{format_size(connection.start)} – {format_size(connection.end)}",
            "left": format_size(max(0, connection.end - connection.position)),
            "bytes": format_size(connection.position - connection.start if self._upload
                                 else connection.bytes),
            "speed": format_rate(connection.speed),
            "retries": str(connection.retries),
            "status": Text(printable(connection.last_status), no_wrap=True,
                           overflow="ellipsis"),
        }
