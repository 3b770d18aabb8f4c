"""Everything about one transfer: the block map (a download's segments, an upload's parts), its
connections, its speed and its facts, each in the words of its direction."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from ...core.printable import printable
from ...core.snapshots import DownloadInfo
from ...core.states import State
from ...core.units import format_eta, format_rate
from ..widgets.connection_table import ConnectionTable
from ..widgets.download_facts import DownloadFacts
from ..widgets.queue_table import UPLOAD_MARK
from ..widgets.segment_map import SegmentMap
from ..widgets.speed_graph import SpeedGraph


def headline(info: DownloadInfo) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    upload = info.direction == "upload"
    text.append(printable(f"{UPLOAD_MARK}{info.name}" if upload else info.name or info.url),
                "bold")
    text.append(f"   {info.state.value}")
    if info.fraction is not None:
        text.append(f"  {info.fraction * 100:.1f}%")
    if info.state.is_moving or info.state is State.CONNECTING:
        text.append(f"  {format_rate(info.speed)}  ETA {format_eta(info.eta)}")
    if upload:  # last: the address is long, and the facts below show it whole
        text.append(printable(f"   → {info.url}"))
    return text


class DetailScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="back")]

    info: reactive[DownloadInfo | None] = reactive(None)

    def __init__(self, info: DownloadInfo) -> None:
        super().__init__()
        self.download_id = info.id
        self.set_reactive(DetailScreen.info, info)

    def compose(self) -> ComposeResult:
        # A transfer keeps its direction for life: the words are chosen once.
        upload = self.info is not None and self.info.direction == "upload"
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Label("Parts" if upload else "Segments", classes="section")
            yield SegmentMap().data_bind(DetailScreen.info)
            yield Label("Connections", classes="section")
            yield ConnectionTable(upload=upload).data_bind(DetailScreen.info)
            yield Static("no parts being sent" if upload else "no open connections",
                         id="no-connections", classes="muted")
            yield SpeedGraph().data_bind(DetailScreen.info)
            yield Label("Upload" if upload else "Download", classes="section")
            yield DownloadFacts().data_bind(DetailScreen.info)
        yield Footer()

    def on_mount(self) -> None:
        self._update(self.info)

    def watch_info(self, info: DownloadInfo | None) -> None:
        self._update(info)

    def _update(self, info: DownloadInfo | None) -> None:
        if info is None:
            return
        self.query_one("#detail-title", Static).update(headline(info))
        self.query_one("#no-connections").display = not info.connections
        self.query_one(ConnectionTable).display = bool(info.connections)
