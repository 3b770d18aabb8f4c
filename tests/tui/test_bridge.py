"""The bridge between engine threads and the app: what is posted, at once."""

from __future__ import annotations

from dataclasses import replace

from textual.message import Message

from laden.core.snapshots import Tick
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


def test_progress_is_posted_at_once_with_its_numbers() -> None:
    # The one throttle is the engine's (see tests/engine/test_progress.py): nothing is held
    # back here, so nothing held back can be lost.
    inbox = Inbox()
    bridge = EngineBridge(inbox)
    info = busy_iso()
    for done in range(50):
        bridge(events.Progress(info.id, replace(info, done=done)))
    progress = [m for m in inbox.messages if isinstance(m, DownloadProgress)]
    assert [m.tick.done for m in progress] == list(range(50))
    assert all(m.tick == Tick.of(replace(info, done=m.tick.done)) for m in progress)


def test_other_downloads_are_not_held_back_by_a_busy_one() -> None:
    inbox = Inbox()
    bridge = EngineBridge(inbox)
    first = busy_iso()
    second = replace(first, id=2)
    bridge(events.Progress(1, first))
    bridge(events.Progress(2, second))
    assert [m.tick.id for m in inbox.messages if isinstance(m, DownloadProgress)] == [1, 2]


def test_state_changes_always_pass_with_their_snapshot() -> None:
    inbox = Inbox()
    bridge = EngineBridge(inbox)
    info = busy_iso()
    paused = replace(info, state=State.PAUSED, sequence=info.sequence + 1)
    bridge(events.Added(info.id, info))
    bridge(events.Progress(info.id, info))
    bridge(events.StateChanged(info.id, State.DOWNLOADING, State.PAUSED, paused))
    bridge(events.Failed(info.id, "the server went away", paused))
    bridge(events.Removed(info.id))
    kinds = [type(m) for m in inbox.messages]
    assert kinds == [DownloadAdded, DownloadProgress, DownloadChanged, DownloadChanged,
                     DownloadNotice, DownloadRemoved]
    changed = inbox.messages[2]
    assert isinstance(changed, DownloadChanged) and changed.info is paused
    notice = inbox.messages[4]
    assert isinstance(notice, DownloadNotice) and notice.severity == "error"
    assert "the server went away" in notice.text


def test_progress_messages_coalesce_only_for_the_same_download() -> None:
    info = busy_iso()
    tick, other = Tick.of(info), Tick.of(replace(info, id=2))
    assert DownloadProgress(tick).can_replace(DownloadProgress(tick))
    assert not DownloadProgress(tick).can_replace(DownloadProgress(other))
    assert not DownloadProgress(tick).can_replace(DownloadChanged(info))
