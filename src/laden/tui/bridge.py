"""Engine events in, Textual messages out: the only code the engine's threads run for the UI.

The listener never touches a widget or a reactive. It turns each event into a message and posts
it to the app (thread-safe), at once: progress is throttled once, at the source (see
`events`), and a progress message still queued is replaced by the next (`can_replace`).
"""

from __future__ import annotations

from typing import Protocol

from textual.message import Message

from ..core.units import format_size
from ..engine import events
from .messages import (
    DownloadAdded,
    DownloadChanged,
    DownloadNotice,
    DownloadProgress,
    DownloadRemoved,
)


class MessageTarget(Protocol):
    def post_message(self, message: Message) -> bool: ...


class EngineBridge:
    """A `DownloadManager` listener that posts messages to `target` (the app)."""

    def __init__(self, target: MessageTarget) -> None:
        self._target = target

    def __call__(self, event: events.Event) -> None:
        """Called on engine threads: be quick, touch nothing but the message queue."""
        if isinstance(event, events.Progress):
            self._target.post_message(DownloadProgress(event.tick))
        elif isinstance(event, events.Added):
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


def _notice(event: events.Event) -> DownloadNotice | None:
    """The toast an event deserves, if any.

    A failed check during a transfer ends in Restarted or Failed, which have their own toast, and
    a check the user asked for is reported by the app from its result: Verified needs none.
    """
    if isinstance(event, events.Completed):
        info = event.info
        checked = [c.algorithm for c in info.checksums if c.verified]
        extra = f", {' and '.join(checked)} verified" if checked else ""
        if info.direction == "upload":
            return DownloadNotice(info, "Upload complete",
                                  f"{info.name} → {info.url} ({format_size(info.size)}{extra})")
        return DownloadNotice(info, "Download complete",
                              f"{info.name} ({format_size(info.size)}{extra})")
    if isinstance(event, events.Failed):
        return DownloadNotice(event.info, f"{event.info.name} failed", event.message, "error")
    if isinstance(event, events.Restarted):
        return DownloadNotice(event.info, f"{event.info.name} restarted", event.reason,
                              "warning")
    return None
