"""Textual messages carrying engine events to the app, posted from engine threads.

`post_message` is thread-safe, so the bridge can post these from any thread; the handlers run
on the app's own thread, the only one that touches widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.notifications import SeverityLevel

from ..core.snapshots import DownloadInfo, Tick


@dataclass
class DownloadAdded(Message):
    """A download joined the queue."""

    info: DownloadInfo


@dataclass
class DownloadProgress(Message):
    """New byte counts and speeds; only the latest one for a download matters."""

    tick: Tick

    def can_replace(self, message: Message) -> bool:
        # A queued progress for the same download is stale once this one is behind it.
        return isinstance(message, DownloadProgress) and message.tick.id == self.tick.id


@dataclass
class DownloadChanged(Message):
    """The state changed (started, paused, resumed, restarted, done, failed, verified)."""

    info: DownloadInfo


@dataclass
class DownloadRemoved(Message):
    """A download left the queue."""

    download_id: int


@dataclass
class DownloadNotice(Message):
    """Something the user should hear about even when looking elsewhere: a toast."""

    info: DownloadInfo
    title: str
    text: str
    severity: SeverityLevel = "information"


@dataclass
class CommandFailed(Message):
    """An engine call made for the user (pause, verify, add, ...) raised an error."""

    action: str
    error: str
