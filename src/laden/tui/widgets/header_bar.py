"""The line above the queue: total speeds (in, and out while uploading), how many transfers are
where, and free disk space."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...core.printable import printable
from ...core.snapshots import DownloadInfo
from ...core.states import ACTIVE, State
from ...core.units import format_rate, format_size
from .shown_path import home_relative
from .styles import component_style


@dataclass(frozen=True)
class Summary:
    speed: float = 0.0
    """Bytes per second coming in (downloads)."""
    sending: float = 0.0
    """Bytes per second going out (uploads)."""
    active: int = 0
    queued: int = 0
    paused: int = 0
    done: int = 0
    failed: int = 0
    free: int | None = None
    """Free bytes on the disk of `folder` (None: unknown)."""
    folder: str = ""
    """Where the selected download is saved (with none selected, the download folder)."""


def summarize(infos: Iterable[DownloadInfo], folder: str, free: int | None) -> Summary:
    counts = {state: 0 for state in State}
    speed = sending = 0.0
    for info in infos:
        counts[info.state] += 1
        if info.direction == "upload":
            sending += info.speed
        else:
            speed += info.speed
    return Summary(
        speed=speed,
        sending=sending,
        active=sum(counts[state] for state in ACTIVE),
        queued=counts[State.QUEUED],
        paused=counts[State.PAUSED],
        done=counts[State.DONE],
        failed=counts[State.FAILED],
        free=free,
        folder=folder,
    )


def free_space(folder: str) -> int | None:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    path = os.path.abspath(folder)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class HeaderBar(Widget):
    """Shows a `Summary`; bound to the queue screen's `summary` reactive."""

    COMPONENT_CLASSES = {
        "header-bar--title",
        "header-bar--speed",
        "header-bar--label",
        "header-bar--failed",
    }

    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        & > .header-bar--title { color: $primary; text-style: bold; }
        & > .header-bar--speed { color: $success; text-style: bold; }
        & > .header-bar--label { color: $foreground-muted; }
        & > .header-bar--failed { color: $error; text-style: bold; }
    }
    """

    summary: reactive[Summary] = reactive(Summary)

    def render(self) -> Text:
        summary = self.summary
        def style(name: str) -> Style:
            return component_style(self, name)

        label = style("header-bar--label")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("laden", style("header-bar--title"))
        text.append("  ↓ ", label)
        text.append(format_rate(summary.speed) if summary.speed else "0 B/s",
                    style("header-bar--speed"))
        if summary.sending:
            text.append("  ↑ ", label)
            text.append(format_rate(summary.sending), style("header-bar--speed"))
        text.append("  ")
        parts = [(summary.active, "active"), (summary.queued, "queued")]
        if summary.paused:
            parts.append((summary.paused, "paused"))
        parts.append((summary.done, "done"))
        for index, (count, name) in enumerate(parts):
            if index:
                text.append(" · ", label)
            text.append(str(count))
            text.append(f" {name}", label)
        if summary.failed:
            text.append(" · ", label)
            text.append(f"{summary.failed} failed", style("header-bar--failed"))
        if summary.free is not None:
            text.append("  free ", label)
            text.append(format_size(summary.free))
            text.append(f" in {_short(printable(summary.folder))}", label)
        return text


def _short(folder: str, width: int = 26) -> str:
    """The folder with ~ for home, cut from the left when long: the end names it best."""
    folder = home_relative(folder)
    return folder if len(folder) <= width else "…" + folder[-(width - 1):]
