"""The queue: downloads start in order, never more at once than allowed, and none is forgotten."""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import pytest

from laden.core.states import State
from laden.engine import events, scheduler
from laden.engine.manager import DownloadManager
from servers.http_server import Faults

from .helpers import FAST, manager, wait_for


@pytest.fixture
def no_periodic_recount(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what the engine asks for wakes the queue: a start that relied on the scheduler's
    periodic count would wait a minute, and the test's own timeout would fail it."""
    monkeypatch.setattr(scheduler, "RECOUNT_EVERY", 60.0)


def _record_starts(m: DownloadManager) -> list[int]:
    """The ids of the downloads that start, in the order they do."""
    started: list[int] = []
    m.subscribe(lambda e: started.append(e.download_id)
                if isinstance(e, events.Started) else None)
    return started


def test_a_list_never_runs_more_at_once_than_allowed(
    http_server, downloads: Path, no_periodic_recount
) -> None:
    # Larger than a probe carries, and paced: every transfer is still running (after its
    # Started event) when the next ones start.
    urls = [http_server.add_file(f"/f{n:02}.bin", bytes([n]) * 200_000,
                                 faults=Faults(rate_per_connection=100_000)) for n in range(12)]
    lock, started, active, most = threading.Lock(), [], set(), [0]

    def on_event(event: events.Event) -> None:
        with lock:
            if isinstance(event, events.Started):
                started.append(event.download_id)
                active.add(event.download_id)
                most[0] = max(most[0], len(active))
            elif isinstance(event, events.Completed | events.Failed):
                active.discard(event.download_id)

    with manager(FAST.replace(max_active=3)) as m:
        m.subscribe(on_event)
        with m.adding_many():
            ids = [m.add(url, str(downloads)) for url in urls]
        infos = [m.wait(i, timeout=30) for i in ids]
    assert [i.state for i in infos] == [State.DONE] * 12
    assert sorted(started) == ids
    assert most[0] == 3
    for n in range(12):
        assert (downloads / f"f{n:02}.bin").read_bytes() == bytes([n]) * 200_000


def test_one_at_a_time_they_start_in_queue_order(
    http_server, downloads: Path, no_periodic_recount
) -> None:
    urls = [http_server.add_file(f"/o{n:02}.bin", b"o" * 5000) for n in range(12)]
    with manager(FAST.replace(max_active=1)) as m:
        started = _record_starts(m)
        with m.adding_many():
            ids = [m.add(url, str(downloads)) for url in urls]
        assert all(m.wait(i, timeout=30).state is State.DONE for i in ids)
    assert started == ids


def test_resumed_while_its_transfer_still_stops_it_starts_again(
    http_server, downloads: Path, no_periodic_recount
) -> None:
    # The transfer's end frees a slot without a full count of the queue; the download it
    # belonged to is queued again by then, and must not wait for the next periodic count.
    url = http_server.add_file("/slow.bin", b"s" * 3_000_000,
                               faults=Faults(rate_per_connection=300_000))
    with manager(FAST.replace(max_active=1)) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done >= 100_000,
                 what="the download to get going")
        m.pause(download_id)
        m.resume(download_id)  # at once: its transfer is most likely still stopping
        http_server.set_faults("/slow.bin", Faults())
        info = m.wait(download_id, timeout=20)
    assert info.state is State.DONE, info.message
    assert (downloads / "slow.bin").read_bytes() == b"s" * 3_000_000


def test_a_queued_download_moved_up_starts_next(
    http_server, downloads: Path, no_periodic_recount
) -> None:
    slow = http_server.add_file("/first.bin", b"1" * 400_000,
                                faults=Faults(rate_per_connection=1_000_000))
    later = [http_server.add_file(f"/q{n}.bin", b"q" * 1000) for n in range(3)]
    with manager(FAST.replace(max_active=1)) as m:
        order = _record_starts(m)
        with m.adding_many():
            first = m.add(slow, str(downloads))
            queued = [m.add(url, str(downloads)) for url in later]
        wait_for(lambda: order, what="a download to start")  # the queue counted, one runs
        m.move(queued[2], -2)  # swaps places with the first one waiting
        for download_id in [first, *queued]:
            assert m.wait(download_id, timeout=30).state is State.DONE
    assert order == [first, queued[2], queued[1], queued[0]]


def test_a_transfer_s_thread_goes_on_with_the_next_download(
    http_server, downloads: Path, no_periodic_recount
) -> None:
    # Started is told on the transfer's own thread. A new thread per file made every freed
    # slot wait for the GIL twice while the other transfers ran Python.
    urls = [http_server.add_file(f"/t{n:02}.bin", b"t" * 5000) for n in range(12)]
    threads: list[threading.Thread] = []  # kept alive, so no two can share an id
    with manager(FAST.replace(max_active=2)) as m:
        m.subscribe(lambda e: threads.append(threading.current_thread())
                    if isinstance(e, events.Started) else None)
        with m.adding_many():
            ids = [m.add(url, str(downloads)) for url in urls]
        assert all(m.wait(i, timeout=30).state is State.DONE for i in ids)
    # The queue's thread starts the first two; a download that ends while it is still starting
    # them frees a slot it may fill with a thread of its own (twice in a fresh-clone run under
    # load). From then on each freed slot is taken by the thread that freed it.
    runs = collections.Counter(id(t) for t in threads)
    assert len(threads) == 12 and len(runs) <= 6 and max(runs.values()) >= 3, runs
