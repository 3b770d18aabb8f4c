"""The progress stream: throttled once at the source, numbered, and built only for listeners."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from laden.core.options import DownloadOptions
from laden.core.snapshots import DownloadInfo, Tick
from laden.core.states import State
from laden.engine import events
from laden.engine.download import PROGRESS_INTERVAL, Download
from laden.store.journal import Record
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256


def _download(download_id: int = 1) -> Download:
    record = Record(url="https://example.com/a.bin", source="http", dest_dir="/tmp",
                    state=State.DOWNLOADING.value)
    record.id = download_id
    return Download(record, DownloadOptions())


def _slow(http_server, name: str, size: int = 1_200_000) -> tuple[str, bytes]:
    """Two connections at 300 KB/s each: two seconds of progress."""
    data = random_bytes(size, seed=len(name))
    return http_server.add_file(name, data, faults=Faults(rate_per_connection=300_000)), data


def test_a_tick_comes_at_most_once_a_moment_per_download_and_the_last_always() -> None:
    one, other = _download(1), _download(2)
    assert one.tick(100.0) is not None
    assert [one.tick(100.0 + n / 100) for n in range(1, 10)] == [None] * 9, "held back"
    assert other.tick(100.05) is not None, "another download is not held back by a busy one"
    assert one.tick(100.1, last=True) is not None, "a transfer's last look is always told"
    assert one.tick(100.1 + PROGRESS_INTERVAL) is not None


def test_progress_is_throttled_at_the_source_and_ends_with_the_last_numbers(
    http_server, downloads: Path
) -> None:
    url, data = _slow(http_server, "/throttled.bin")
    told: list[tuple[float, events.Progress]] = []
    with manager(FAST.replace(connections=2)) as m:
        m.subscribe(lambda e: told.append((time.monotonic(), e))
                    if isinstance(e, events.Progress) else None)
        info = m.wait(m.add(url, str(downloads) + "/"))
    assert info.state is State.DONE and sha256(Path(info.dest)) == sha256(data)
    assert len(told) >= 4, "a two-second download is told about several times"
    gaps = [later - earlier for (earlier, _), (later, _) in zip(told, told[1:-1], strict=False)]
    # Five a second at most (less the clock's and the GIL's jitter), but the last.
    assert min(gaps) >= PROGRESS_INTERVAL * 0.75, gaps
    last = told[-1][1].tick
    assert last.done == len(data) and last.state is State.DOWNLOADING


def test_no_tick_is_made_when_nobody_listens_for_progress(
    http_server, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    real_tick = Download.tick

    def counting(self: Download, now: float, *, last: bool = False) -> Tick | None:
        tick = real_tick(self, now, last=last)
        made.append(tick)
        return tick

    monkeypatch.setattr(Download, "tick", counting)
    url, _data = _slow(http_server, "/unheard.bin", size=600_000)
    changes: list[events.Event] = []
    with manager(FAST.replace(connections=2)) as m:
        m.subscribe(changes.append, progress=False)
        assert m.wait(m.add(url, str(downloads) + "/")).state is State.DONE
        assert made == [] and not any(isinstance(e, events.Progress) for e in changes)
        assert any(isinstance(e, events.Completed) for e in changes)
        # One listener that wants progress is enough for the ticks to be made again.
        heard: list[events.Event] = []
        m.subscribe(heard.append)
        m.wait(m.add(url, str(downloads) + "/", again=True))
    assert [t for t in made if t is not None]
    assert any(isinstance(e, events.Progress) for e in heard)


def test_a_progress_event_makes_its_whole_snapshot_when_first_read() -> None:
    info = DownloadInfo(id=1, url="https://example.com/a.bin", final_url=None, source="http",
                        dest="/tmp/a.bin", state=State.DOWNLOADING, size=10, done=4,
                        speed=2.0, eta=3.0, sequence=7)

    class Held:
        lock = threading.RLock()
        made = 0

        def info(self) -> DownloadInfo:
            Held.made += 1
            return replace(info, sequence=8)

    event = events.Progress.of_tick(Tick.of(info), Held())
    assert event.download_id == 1 and event.tick.done == 4 and Held.made == 0
    whole = event.info
    assert Held.made == 1 and whole.sequence == 8
    assert event.info is whole and Held.made == 1, "made once, then kept"
    # Made of a whole snapshot, as before: that snapshot, and its moving numbers.
    given = events.Progress(1, info)
    assert given.info is info and given.tick == Tick.of(info)
    assert given.tick.applied_to(replace(info, done=0, sequence=1)) == info


def test_snapshots_are_numbered_in_the_order_of_what_they_show(
    http_server, downloads: Path
) -> None:
    url, _data = _slow(http_server, "/numbered.bin", size=2_400_000)
    shown: dict[int, DownloadInfo | Tick] = {}  # by identity: two events may share one
    lock = threading.Lock()

    def note(event: events.Event) -> None:
        one = event.tick if isinstance(event, events.Progress) else getattr(event, "info", None)
        if one is not None:
            with lock:
                shown[id(one)] = one

    with manager(FAST.replace(connections=2)) as m:
        m.subscribe(note)
        download_id = m.add(url, str(downloads) + "/")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                s.state is State.DOWNLOADING for s in list(shown.values())):
            time.sleep(0.05)
        time.sleep(0.3)
        assert m.pause(download_id)
        paused = m.wait(download_id)
        asked = m.get(download_id)
    assert paused.state is State.PAUSED
    assert asked.sequence > paused.sequence > 0, "every snapshot has a number of its own"
    numbers = [s.sequence for s in shown.values()]
    assert len(set(numbers)) == len(numbers)
    # However the events arrived, in the order of their numbers nothing runs after the pause.
    states = [s.state for s in sorted(shown.values(), key=lambda s: s.sequence)]
    first_paused = states.index(State.PAUSED)
    assert set(states[first_paused:]) == {State.PAUSED}, states
