"""Everything known about one transfer as label / value lines: addresses, destination, size,
validators, checksums, a model file's structure, options, retries and the last errors with
their times; an upload's in its own words (to, from, sent and to send).

Nearly every value came from a server or was typed by someone, so each one is made printable
and shown as text, never read as markup.
"""

from __future__ import annotations

import time

from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...core.printable import printable
from ...core.snapshots import ChecksumInfo, DownloadInfo
from ...core.states import State
from ...core.units import format_rate, format_size
from ...engine.formats import FormatReport
from .segment_map import sent
from .shown_path import home_relative
from .styles import component_style

MAX_ERRORS_SHOWN = 8


def format_time(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


class DownloadFacts(Widget):
    COMPONENT_CLASSES = {
        "download-facts--label",
        "download-facts--good",
        "download-facts--bad",
        "download-facts--muted",
    }

    DEFAULT_CSS = """
    DownloadFacts {
        height: auto;
        & > .download-facts--label { color: $foreground-muted; }
        & > .download-facts--good { color: $success; }
        & > .download-facts--bad { color: $error; }
        & > .download-facts--muted { color: $foreground-muted; }
    }
    """

    info: reactive[DownloadInfo | None] = reactive(None, layout=True)

    def _style(self, name: str) -> Style:
        return component_style(self, f"download-facts--{name}")

    def render(self) -> RenderableType:
        info = self.info
        if info is None:
            return Text("")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=self._style("label"), no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in self._rows(info):
            # A str cell of a rich table is markup: "[" in an address would be read as a tag.
            grid.add_row(label, value if isinstance(value, Text) else Text(printable(value)))
        return grid

    def _rows(self, info: DownloadInfo) -> list[tuple[str, Text | str]]:
        if info.direction == "upload":
            return self._upload_rows(info)
        muted = self._style("muted")
        rows: list[tuple[str, Text | str]] = [("URL", info.url)]
        if info.final_url and info.final_url != info.url:
            rows.append(("Final URL", info.final_url))
        rows.append(("Destination", home_relative(info.dest)))
        size = format_size(info.size) if info.size is not None else "unknown"
        exact = f" ({info.size:,} bytes)" if info.size else ""
        rows.append(("Size", f"{size}{exact}, {format_size(info.done)} on disk"))
        rows.append(("State", self._state(info)))
        rows.append(("Source", f"{info.source}"
                               f"{'' if info.resumable else '  (cannot resume: no ranges)'}"))
        rows.append(("ETag", Text(printable(info.etag or "-"), style="" if info.etag else muted)))
        rows.append(("Last-Modified", Text(printable(info.last_modified or "-"),
                                           style="" if info.last_modified else muted)))
        rows.append(("Checksums", self._checksums(info.checksums)))
        if info.format_check is not None:
            rows.append(("Structure", self._structure(info.format_check)))
        return rows + self._history_rows(info)

    def _upload_rows(self, info: DownloadInfo) -> list[tuple[str, Text | str]]:
        """An upload's facts: where from and to, and its bytes as the service has them."""
        rows: list[tuple[str, Text | str]] = [("To", info.url),
                                              ("From", home_relative(info.dest))]
        size = info.size or 0
        done = sent(info)
        reading = max(0, info.done - done) if info.state is not State.DONE else 0
        rows.append(("Size", f"{format_size(size)} ({size:,} bytes)"))
        sending = f", {format_size(reading)} in parts being sent" if reading else ""
        rows.append(("Sent", f"{format_size(done)} acknowledged by the service{sending}, "
                             f"{format_size(max(0, size - done - reading))} to send"))
        rows.append(("State", self._state(info)))
        rows.append(("Service", info.source))
        rows.append(("Checksums", self._checksums(
            info.checksums, none="compared with the service's once committed")))
        return rows + self._history_rows(info)

    def _state(self, info: DownloadInfo) -> Text:
        state = Text(info.state.value)
        if info.message:
            state.append(f"  {printable(info.message)}",
                         self._style("bad" if info.errors else "muted"))
        return state

    def _history_rows(self, info: DownloadInfo) -> list[tuple[str, Text | str]]:
        rows: list[tuple[str, Text | str]] = [("Options", self._options(info))]
        rows.append(("Added", format_time(info.created)))
        if info.finished:
            rows.append(("Finished", format_time(info.finished)))
        rows.append(("Retries", str(info.retries)))
        rows.append(("Errors", self._errors(info)))
        return rows

    def _checksums(self, checksums: tuple[ChecksumInfo, ...], *,
                   none: str = "none published") -> Text:
        if not checksums:
            return Text(none, style=self._style("muted"))
        text = Text()
        for index, checksum in enumerate(checksums):
            if index:
                text.append("\n")
            text.append(printable(f"{checksum.algorithm} {checksum.expected} "
                                  f"({checksum.origin}) "))
            if checksum.verified is True:
                text.append("✓ verified", self._style("good"))
            elif checksum.verified is False:
                text.append(printable(f"✗ mismatch: got {checksum.actual}"), self._style("bad"))
            else:
                text.append("not checked yet", self._style("muted"))
        return text

    def _structure(self, report: FormatReport) -> Text:
        """The model-file check's verdict (see `engine.formats`)."""
        if report.ok:
            text = Text(printable(f"{report.kind}, {report.detail} "))
            text.append("✓ checked", self._style("good"))
            return text
        text = Text(printable(f"{report.kind}: "))
        text.append(printable(f"✗ {report.detail}"), self._style("bad"))
        return text

    def _options(self, info: DownloadInfo) -> Text:
        options = dict(info.options)
        if "limit_rate" in options and isinstance(options["limit_rate"], int):
            options["limit_rate"] = format_rate(options["limit_rate"])
        if not options:
            return Text("defaults", style=self._style("muted"))
        return Text(printable(", ".join(f"{key}={value}"
                                        for key, value in sorted(options.items()))))

    def _errors(self, info: DownloadInfo) -> Text:
        if not info.errors:
            return Text("none", style=self._style("muted"))
        text = Text()
        shown = info.errors[-MAX_ERRORS_SHOWN:]
        for index, error in enumerate(reversed(shown)):
            if index:
                text.append("\n")
            text.append(format_time(error.time), self._style("muted"))
            text.append(f"  {printable(error.message)}", self._style("bad"))
        if len(info.errors) > len(shown):
            text.append(f"\n… and {len(info.errors) - len(shown)} earlier",
                        self._style("muted"))
        return text
