"""Engine events in, Textual messages out: the only code the engine's threads run for the UI.

The listener never touches a widget or a reactive. It turns each event into a message and posts
it to the app (thread-safe), holding back progress so a download asks for at most a few redraws
a second however chatty the engine is. `flush` (from a UI timer) sends what was held back, so the
last numbers before a download goes quiet are never lost.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from textual.message import Message

from ..core.snapshots import DownloadInfo
from ..core.units import format_size
from ..engine import events
from .messages import (
    DownloadAdded,
    DownloadChanged,
    DownloadNotice,
    DownloadProgress,
    DownloadRemoved,
)

MIN_INTERVAL = 0.2
"""Seconds between two progress messages of one download (five redraws a second at most)."""


class MessageTarget(Protocol):
    def post_message(self, message: Message) -> bool: ...


class EngineBridge:
    """A `DownloadManager` listener that posts messages to `target` (the app)."""

    def __init__(self, target: MessageTarget, min_interval: float = MIN_INTERVAL) -> None:
        self._target = target
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._last_sent: dict[int, float] = {}
        self._held: dict[int, DownloadInfo] = {}

    def __call__(self, event: events.Event) -> None:
        """Called on engine threads: be quick, touch nothing but the message queue."""
        if isinstance(event, events.Progress):
            self._progress(event.info)
            return
        with self._lock:
            # A state change carries a fresher snapshot than anything held back.
            self._held.pop(event.download_id, None)
            if isinstance(event, events.Removed):
                self._last_sent.pop(event.download_id, None)
        if isinstance(event, events.Added):
            self._target.post_message(DownloadAdded(event.info))
        elif isinstance(event, events.Removed):
            self._target.post_message(DownloadRemoved(event.download_id))
        elif isinstance(event, events.StateChanged | events.Started | events.Paused
                        | events.Resumed | events.Restarted | events.Retrying | events.Completed
                        | events.Failed | events.Verified):
            self._target.post_message(DownloadChanged(event.info))
            notice = _notice(event)
            if notice is not None:
                self._target.post_message(notice)

    def _progress(self, info: DownloadInfo) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_sent.get(info.id, 0.0) < self._min_interval:
                self._held[info.id] = info
                return
            self._last_sent[info.id] = now
            self._held.pop(info.id, None)
        self._target.post_message(DownloadProgress(info))

    def flush(self) -> None:
        """Post the progress held back by the throttle once its interval has passed."""
        now = time.monotonic()
        ready: list[DownloadInfo] = []
        with self._lock:
            for download_id, info in list(self._held.items()):
                if now - self._last_sent.get(download_id, 0.0) >= self._min_interval:
                    ready.append(info)
                    self._last_sent[download_id] = now
                    del self._held[download_id]
        for info in ready:
            self._target.post_message(DownloadProgress(info))


def _notice(event: events.Event) -> DownloadNotice | None:
    """The toast an event deserves, if any.

    A failed check during a transfer ends in Restarted or Failed, which have their own toast, and
    a check the user asked for is reported by the app from its result: Verified needs none.
    """
    if isinstance(event, events.Completed):
        info = event.info
        checked = [c.algorithm for c in info.checksums if c.verified]
        extra = f", {' and '.join(checked)} verified" if checked else ""
        return DownloadNotice(info, "Download complete",
                              f"{info.name} ({format_size(info.size)}{extra})")
    if isinstance(event, events.Failed):
        return DownloadNotice(event.info, f"{event.info.name} failed", event.message, "error")
    if isinstance(event, events.Restarted):
        return DownloadNotice(event.info, f"{event.info.name} restarted", event.reason,
                              "warning")
    return None
