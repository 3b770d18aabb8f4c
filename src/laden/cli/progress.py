"""Headless progress: a rich display on a terminal, plain lines in logs, JSON for programs.

Displays are drawn from the main thread a few times a second, so nothing is drawn from an
engine thread; what they show comes from the engine's events (`Latest`), not from asking the
manager. The JSON printer is a listener and writes one line per event.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TextIO

from ..core.printable import printable
from ..core.snapshots import DownloadInfo, Tick
from ..core.states import State
from ..core.units import format_eta, format_rate, format_size
from ..engine import events
from . import terminal

PLAIN_INTERVAL = 5.0


class Latest:
    """The newest snapshot of each download watched, kept from the engine's events: what a
    display shows while downloads run, without asking the manager.

    It is a listener, called on the engine's threads: an event's snapshot is kept unless the
    one kept is newer (events from several threads may arrive out of order; see
    `DownloadInfo.sequence`), and a progress tick is kept for `infos` to apply on the
    caller's thread. Subscribe it first, then `seed` it with the downloads as they are, so
    that nothing in between is missed.

    Args:
        ids: the downloads watched; events of others are left alone.
    """

    def __init__(self, ids: Iterable[int]) -> None:
        self._watched = frozenset(ids)
        self._lock = threading.Lock()
        self._infos: dict[int, DownloadInfo] = {}
        self._ticks: dict[int, Tick] = {}

    def __call__(self, event: events.Event) -> None:
        if event.download_id not in self._watched:
            return
        if isinstance(event, events.Progress):
            tick = event.tick
            with self._lock:
                kept = self._ticks.get(tick.id)
                if kept is None or kept.sequence <= tick.sequence:
                    self._ticks[tick.id] = tick
            return
        info: DownloadInfo | None = getattr(event, "info", None)
        if info is not None:
            self.seed([info])

    def seed(self, infos: Iterable[DownloadInfo]) -> None:
        """Keep these snapshots, unless newer ones came meanwhile."""
        infos = list(infos)  # asked of the manager before the lock, which listeners want
        with self._lock:
            for info in infos:
                kept = self._infos.get(info.id)
                if kept is None or kept.sequence <= info.sequence:
                    self._infos[info.id] = info

    def infos(self, ids: Iterable[int]) -> list[DownloadInfo]:
        """The newest snapshot of each of `ids` (all seeded), in that order."""
        found = []
        with self._lock:
            for download_id in ids:
                info = self._infos[download_id]
                tick = self._ticks.pop(download_id, None)
                if tick is not None and tick.sequence > info.sequence:
                    info = self._infos[download_id] = tick.applied_to(info)
                found.append(info)
        return found


class Display:
    """Shows nothing; the base of the others (used for --quiet)."""

    shows_progress = False
    """False: the watcher needs no progress events, only changes of state."""

    def update(self, infos: Iterable[DownloadInfo]) -> None:
        pass

    def close(self) -> None:
        pass


class PlainDisplay(Display):
    """A line per download every few seconds, and one at each change of state."""

    shows_progress = True

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout  # looked up now, not at import: it may be redirected
        self._states: dict[int, State] = {}
        self._waits: dict[int, float | None] = {}
        self._retries: dict[int, int] = {}
        self._last = 0.0

    def update(self, infos: Iterable[DownloadInfo]) -> None:
        now = time.monotonic()
        periodic = now - self._last >= PLAIN_INTERVAL
        for info in infos:
            # A retry whose short wait ended between two looks still gets its line.
            retried = info.retries > self._retries.get(info.id, info.retries) or (
                info.retry_at is not None and self._waits.get(info.id) != info.retry_at)
            changed = self._states.get(info.id) is not info.state or retried
            self._states[info.id] = info.state
            self._waits[info.id] = info.retry_at
            self._retries[info.id] = info.retries
            if changed or (periodic and info.state.is_moving):
                self._out.write(plain_line(info, retrying=retried) + "\n")
        if periodic:
            self._last = now
        self._out.flush()


def plain_line(info: DownloadInfo, *, retrying: bool = False) -> str:
    percent = f"{info.fraction * 100:5.1f}%" if info.fraction is not None else "    ?%"
    parts = [f"[{info.id}]", info.name, info.state.value, percent,
             f"{format_size(info.done)}/{format_size(info.size)}"]
    if info.state.is_moving:
        parts += [format_rate(info.speed), f"ETA {format_eta(info.eta)}"]
    if info.message and (retrying or info.retry_at is not None
                         or info.state in (State.FAILED, State.PAUSED, State.DONE)):
        parts.append(f"- {info.message}")
    # One line whatever a server put in the name or the message (the stream keeps newlines).
    return printable(" ".join(p for p in parts if p))


class RichDisplay(Display):
    shows_progress = True

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("[bold]{task.fields[name]}", justify="left"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            # Sizes, speed and time left as the engine and the plain lines give them: rich's
            # own speed column counts in decimal MB/s beside binary MiB, and guesses its own ETA.
            TextColumn("{task.fields[amount]}", justify="right"),
            TextColumn("{task.fields[speed]}", justify="right"),
            TextColumn("{task.fields[eta]}", justify="right"),
            TextColumn("{task.fields[state]}"),
            transient=False,
            refresh_per_second=4,
            # Its own escape sequences must reach the terminal, so it writes past the
            # printable stream and makes each name printable itself (see `update`); nothing
            # else is redirected into it, so all other output stays on the printable stream.
            console=console or Console(file=terminal.real_stream(sys.stdout)),
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[int, Any] = {}
        self._progress.start()

    def update(self, infos: Iterable[DownloadInfo]) -> None:
        from rich.markup import escape

        for info in infos:
            name = escape(printable(info.name))  # the name column is rich markup
            state = info.state.value if not info.state.is_moving else ""
            if info.retry_at is not None:
                why = info.errors[-1].message if info.errors else ""
                why = escape(printable(why if len(why) <= 48 else why[:47] + "…"))
                state = f"[yellow]{why}: retry in {format_eta(info.retry_at - time.time())}[/]"
            elif info.state is State.FAILED:
                state = "[red]failed[/]"
            elif info.state is State.DONE:
                state = "[green]done[/]"
            running = info.state.is_moving
            fields = dict(name=name, state=state,
                          amount=f"{format_size(info.done)}/{format_size(info.size)}",
                          speed=format_rate(info.speed) if running else "",
                          eta=format_eta(info.eta) if running and info.eta is not None else "")
            task = self._tasks.get(info.id)
            if task is None:
                task = self._progress.add_task("", total=info.size, **fields)
                self._tasks[info.id] = task
            self._progress.update(task, completed=info.done, total=info.size, **fields)

    def close(self) -> None:
        self._progress.stop()


class JsonPrinter:
    """A listener that prints every event as one JSON object per line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout  # looked up now, not at import: it may be redirected
        self._lock = threading.Lock()
        self._last_progress: dict[int, float] = {}

    def __call__(self, event: events.Event) -> None:
        now = time.monotonic()
        if isinstance(event, events.Progress):
            if now - self._last_progress.get(event.download_id, 0.0) < 1.0:
                return
            self._last_progress[event.download_id] = now
        line = json.dumps(event_json(event), separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def event_json(event: events.Event) -> dict[str, Any]:
    data: dict[str, Any] = {"event": type(event).__name__.lower(), "id": event.download_id,
                            "time": round(time.time(), 3)}
    info = getattr(event, "info", None)
    if info is not None:
        data.update(info_json(info, brief=True))
    for key in ("reason", "message", "ok", "wait", "attempt", "checked", "kind"):
        if hasattr(event, key):
            data[key] = getattr(event, key)
    if isinstance(event, events.Retrying):
        data["wait"] = round(event.wait, 3)
    return data


def info_json(info: DownloadInfo, *, brief: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": info.id, "direction": info.direction, "url": info.url, "dest": info.dest,
        "source": info.source,
        "state": info.state.value, "size": info.size, "done": info.done,
        "speed": round(info.speed, 1), "eta": None if info.eta is None else round(info.eta, 1),
        "message": info.message,
    }
    if info.retry_at is not None:
        data["retry_at"] = round(info.retry_at, 3)
    if not brief:
        data.update(
            final_url=info.final_url, etag=info.etag, last_modified=info.last_modified,
            checksums=[c.__dict__ for c in info.checksums], retries=info.retries,
            errors=[{"time": e.time, "message": e.message} for e in info.errors],
            group=info.group,
            format_check=info.format_check.to_journal() if info.format_check else None,
        )
    return data


def choose(quiet: bool, as_json: bool, out: TextIO | None = None) -> Display:
    out = out or sys.stdout
    if quiet or as_json:
        return Display()
    if out.isatty():
        return RichDisplay()
    return PlainDisplay(out)
