"""The bridge between engine threads and the app: what is posted, what is held back."""

from __future__ import annotations

import time
from dataclasses import replace

from textual.message import Message

from laden.core.states import State
from laden.engine import events
from laden.tui.bridge import EngineBridge
from laden.tui.messages import (
    DownloadAdded,
    DownloadChanged,
    DownloadNotice,
    DownloadProgress,
    DownloadRemoved,
)

from .still_manager import busy_iso


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def post_message(self, message: Message) -> bool:
        self.messages.append(message)
        return True


def test_progress_is_throttled_per_download_and_flushed_later() -> None:
    inbox = Inbox()
    bridge = EngineBridge(inbox, min_interval=0.2)
    info = busy_iso()
    for _ in range(50):
        bridge(events.Progress(info.id, info))
    assert [type(m) for m in inbox.messages] == [DownloadProgress]
    bridge.flush()  # too early: still held
    assert len(inbox.messages) == 1
    time.sleep(0.25)
    bridge.flush()
    assert [type(m) for m in inbox.messages] == [DownloadProgress, DownloadProgress]
    bridge.flush()
    assert len(inbox.messages) == 2, "a held progress is sent once"


def test_other_downloads_are_not_held_back_by_a_busy_one() -> None:
    inbox = Inbox()
    bridge = EngineBridge(inbox, min_interval=10)
    first = busy_iso()
    second = replace(first, id=2)
    bridge(events.Progress(1, first))
    bridge(events.Progress(2, second))
    assert [m.info.id for m in inbox.messages if isinstance(m, DownloadProgress)] == [1, 2]


def test_state_changes_always_pass_and_drop_held_progress() -> None:
    inbox = Inbox()
    bridge = EngineBridge(inbox, min_interval=10)
    info = busy_iso()
    bridge(events.Added(info.id, info))
    bridge(events.Progress(info.id, info))
    bridge(events.Progress(info.id, info))  # held
    bridge(events.StateChanged(info.id, State.DOWNLOADING, State.PAUSED, info))
    bridge(events.Failed(info.id, "the server went away", info))
    bridge(events.Removed(info.id))
    bridge.flush()
    kinds = [type(m) for m in inbox.messages]
    assert kinds == [DownloadAdded, DownloadProgress, DownloadChanged, DownloadChanged,
                     DownloadNotice, DownloadRemoved]
    notice = inbox.messages[4]
    assert isinstance(notice, DownloadNotice) and notice.severity == "error"
    assert "the server went away" in notice.text


def test_progress_messages_coalesce_only_for_the_same_download() -> None:
    info = busy_iso()
    other = replace(info, id=2)
    assert DownloadProgress(info).can_replace(DownloadProgress(info))
    assert not DownloadProgress(info).can_replace(DownloadProgress(other))
    assert not DownloadProgress(info).can_replace(DownloadChanged(info))
