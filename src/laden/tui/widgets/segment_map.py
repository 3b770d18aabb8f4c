"""The block map of one transfer: which bytes are done, which connection is where, what is left.

For an upload the bytes done are the parts the service acknowledged, and a connection's stretch
is the part it is reading and sending.

The file is laid out across the widget, left to right and top to bottom, one character per
slice of bytes. A slice is drawn in the colour of the connection that owns it (solid where that
connection has written, shaded where it is still to go), else solid green when it is on disk,
else faint when nothing has it yet. The last line is the legend.
"""

from __future__ import annotations

from bisect import bisect_right

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...core.snapshots import ConnectionInfo, DownloadInfo
from ...core.states import State
from ...core.units import format_size
from .styles import component_style

FULL, PART, EMPTY = "█", "▓", "░"

CONNECTION_COLOURS = (
    "$primary", "$accent", "$error", "$primary-lighten-3",
    "$accent-darken-3", "$secondary-lighten-2", "$error-lighten-3", "$accent-lighten-3",
)
"""Neighbours differ in hue or lightness in every built-in theme; more connections cycle."""
PALETTE_SIZE = len(CONNECTION_COLOURS)


def connection_class(number: int) -> str:
    """The component class (and colour) of a connection; shared with the connection table."""
    return f"segment-map--connection-{number % PALETTE_SIZE}"


def connection_css(widget_type: str) -> str:
    """CSS giving `widget_type` the connection colours as component classes."""
    return "\n".join(f"{widget_type} > .{connection_class(number)} {{ color: {colour}; }}"
                     for number, colour in enumerate(CONNECTION_COLOURS))


def overlap(ranges: list[tuple[int, int]], starts: list[int], low: int, high: int) -> int:
    """Bytes of [low, high) covered by sorted, disjoint `ranges` (`starts` their starts)."""
    covered = 0
    index = max(0, bisect_right(starts, low) - 1)
    while index < len(ranges) and ranges[index][0] < high:
        start, end = ranges[index]
        covered += max(0, min(end, high) - max(start, low))
        index += 1
    return covered


class SegmentMap(Widget):
    COMPONENT_CLASSES = {
        "segment-map--done",
        "segment-map--missing",
        "segment-map--label",
        *(connection_class(n) for n in range(PALETTE_SIZE)),
    }

    DEFAULT_CSS = """
    SegmentMap {
        height: 5;
        & > .segment-map--done { color: $success; }
        & > .segment-map--missing { color: $foreground 20%; }
        & > .segment-map--label { color: $foreground-muted; }
    }
    """ + connection_css("SegmentMap")

    info: reactive[DownloadInfo | None] = reactive(None)

    def _style(self, name: str) -> Style:
        return component_style(self, name)

    def render(self) -> Text:
        info = self.info
        width, height = self.size.width, max(1, self.size.height - 1)
        if info is None or width <= 0:
            return Text()
        if not info.size:
            what = "size unknown" if info.size is None else "empty file"
            moved = "sent" if info.direction == "upload" else "downloaded"
            return Text(f"{what}: {format_size(info.done)} {moved}",
                        style=self._style("segment-map--label"))
        text = Text(no_wrap=True)
        for row, line in enumerate(self._rows(info, width, height)):
            if row:
                text.append("\n")
            text.append_text(line)
        text.append("\n")
        text.append_text(self._legend(info))
        return text

    def _rows(self, info: DownloadInfo, width: int, height: int) -> list[Text]:
        assert info.size
        size = info.size
        slices = width * height
        done = list(info.done_ranges) if info.state is not State.DONE else [(0, size)]
        starts = [start for start, _ in done]
        connections = sorted(info.connections, key=lambda c: c.start)
        styles = {"done": self._style("segment-map--done"),
                  "missing": self._style("segment-map--missing")}
        rows: list[Text] = []
        line = Text(no_wrap=True)
        for index in range(slices):
            low = index * size // slices
            high = max(low + 1, (index + 1) * size // slices)
            char, style = self._slice(done, starts, connections, low, high, styles)
            line.append(char, style)
            if (index + 1) % width == 0:
                rows.append(line)
                line = Text(no_wrap=True)
        return rows

    def _slice(
        self,
        done: list[tuple[int, int]],
        starts: list[int],
        connections: list[ConnectionInfo],
        low: int,
        high: int,
        styles: dict[str, Style],
    ) -> tuple[str, Style]:
        owner = _owner(connections, low, high)
        if owner is not None:
            written = max(0, min(owner.position, high) - max(owner.start, low))
            span = min(owner.end, high) - max(owner.start, low)
            char = FULL if written >= span else PART if written else EMPTY
            return char, self._style(connection_class(owner.number))
        covered = overlap(done, starts, low, high)
        if covered >= high - low:
            return FULL, styles["done"]
        if covered:
            return PART, styles["done"]
        return EMPTY, styles["missing"]

    def _legend(self, info: DownloadInfo) -> Text:
        label = self._style("segment-map--label")
        legend = Text(no_wrap=True, overflow="ellipsis")
        upload = info.direction == "upload"
        if upload:
            legend.append(f"{format_size(sent(info))} sent of {format_size(info.size)}   ",
                          label)
        else:
            legend.append(f"{format_size(info.done)} of {format_size(info.size)}   ", label)
        legend.append(FULL, self._style("segment-map--done"))
        legend.append(" acknowledged  " if upload else " done  ", label)
        legend.append(EMPTY, self._style("segment-map--missing"))
        legend.append(" to send" if upload else " missing", label)
        if info.connections:
            legend.append("   connections ", label)
            for connection in sorted(info.connections, key=lambda c: c.number):
                legend.append(FULL, self._style(connection_class(connection.number)))
                legend.append(f" {connection.number} ", label)
            legend.append(f" ({FULL} read, {EMPTY} to read)" if upload else
                          f" ({FULL} written, {EMPTY} to fetch)", label)
        return legend


def sent(info: DownloadInfo) -> int:
    """An upload's bytes the service acknowledged: its done ranges are its acknowledged
    parts (the bytes read into parts still being sent are in `done`, not here)."""
    if info.state is State.DONE:
        return info.size or 0
    return sum(end - start for start, end in info.done_ranges)


def _owner(connections: list[ConnectionInfo], low: int, high: int) -> ConnectionInfo | None:
    """The connection whose range covers most of [low, high), if any."""
    best, best_cover = None, 0
    for connection in connections:
        if connection.start >= high:
            break
        cover = min(connection.end, high) - max(connection.start, low)
        if cover > best_cover:
            best, best_cover = connection, cover
    return best
