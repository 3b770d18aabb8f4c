"""Speed over the last minutes: a sparkline of the engine's one-sample-a-second history."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline

from ...core.snapshots import DownloadInfo
from ...core.units import format_rate


class SpeedGraph(Vertical):
    DEFAULT_CSS = """
    SpeedGraph {
        height: auto;
        & > Label { color: $foreground-muted; }
        & > Sparkline { height: 3; }
        & > Sparkline > .sparkline--max-color { color: $success; }
        & > Sparkline > .sparkline--min-color { color: $success 20%; }
    }
    """

    info: reactive[DownloadInfo | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield Label("", id="speed-caption")
        yield Sparkline([])

    def on_mount(self) -> None:
        self.watch_info(self.info)

    def watch_info(self, info: DownloadInfo | None) -> None:
        if not self.children:
            return  # bound before compose: on_mount draws it
        history = list(info.speed_history) if info is not None else []
        sparkline = self.query_one(Sparkline)
        # One column a second until the history is wider than the graph, so the time axis
        # stays put while a download starts instead of stretching a few samples across it.
        width = max(1, sparkline.size.width)
        sparkline.data = [0.0] * max(0, width - len(history)) + history
        minutes = len(history) / 60
        span = f"last {minutes:.0f} min" if minutes >= 1 else f"last {len(history)} s"
        peak = max(history, default=0.0)
        self.query_one("#speed-caption", Label).update(
            f"Speed ({span}): now {format_rate(info.speed if info else 0) or '-'}"
            f", peak {format_rate(peak)}"
        )
