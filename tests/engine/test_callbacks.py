"""Callbacks given to one `add`: called on the manager's callback thread, a few times a second
at most, and a callback that raises or blocks never stops a download."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

CALLBACK_THREAD = "laden-callbacks"


class Calls:
    """What a callback was called with, from which thread, and when."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, float, DownloadInfo]] = []
        self.done = threading.Event()

    def __call__(self, info: DownloadInfo) -> None:
        with self.lock:
            self.calls.append((threading.current_thread().name, time.monotonic(), info))
        self.done.set()

    @property
    def infos(self) -> list[DownloadInfo]:
        with self.lock:
            return [info for _thread, _when, info in self.calls]

    @property
    def threads(self) -> set[str]:
        with self.lock:
            return {thread for thread, _when, _info in self.calls}

    @property
    def gaps(self) -> list[float]:
        with self.lock:
            times = [when for _thread, when, _info in self.calls]
        return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


@pytest.fixture
def laden_log() -> Iterator[list[logging.LogRecord]]:
    """The records of the 'laden' logger (a handler of its own: the logger may not propagate)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("laden")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def slow_file(http_server, name: str, size: int = 1_200_000, seed: int = 0) -> tuple[str, bytes]:
    """A file the server sends at 300 KB/s per connection: two connections take two seconds."""
    data = random_bytes(size, seed=seed)
    return http_server.add_file(name, data, faults=Faults(rate_per_connection=300_000)), data


def test_progress_on_the_callback_thread_at_most_four_a_second(
    http_server, downloads: Path
) -> None:
    url, data = slow_file(http_server, "/slow.bin")
    progress, done = Calls(), Calls()
    with manager(FAST.replace(connections=2)) as m:
        download_id = m.add(url, str(downloads) + "/", on_progress=progress, on_done=done)
        info = m.wait(download_id)
        assert done.done.wait(5), "on_done was not called"
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert progress.threads == {CALLBACK_THREAD}
    assert done.threads == {CALLBACK_THREAD}
    assert len(progress.infos) >= 3, "a two-second download is told about several times"
    assert min(progress.gaps) >= 0.2, progress.gaps  # 0.25 s apart, less the clock's jitter
    numbers = [i.done for i in progress.infos]
    assert numbers == sorted(numbers) and numbers[-1] > 0
    assert all(i.id == download_id for i in progress.infos)
    [final] = done.infos
    assert final.state is State.DONE and final.done == len(data)


def test_a_callback_that_raises_is_logged_and_changes_nothing(
    http_server, downloads: Path, laden_log: list[logging.LogRecord]
) -> None:
    url, data = slow_file(http_server, "/raises.bin", size=600_000)
    other = http_server.add_file("/other.bin", b"other bytes")

    def broken(info: DownloadInfo) -> None:
        raise ZeroDivisionError("a bug in the caller's callback")

    after = Calls()
    with manager(FAST.replace(connections=2)) as m:
        first = m.add(url, str(downloads) + "/", on_progress=broken, on_done=broken)
        assert m.wait(first).state is State.DONE
        # The dispatcher lives on: the next download's callbacks are called.
        second = m.add(other, str(downloads) + "/", on_done=after)
        assert m.wait(second).state is State.DONE
        assert after.done.wait(5), "the dispatcher died with the broken callback"
    assert (downloads / "raises.bin").read_bytes() == data
    failures = [r for r in laden_log if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    messages = {r.getMessage() for r in failures}
    assert f"on_progress of download {first} failed" in messages
    assert f"on_done of download {first} failed" in messages


def test_a_callback_that_blocks_does_not_hold_up_the_download(
    http_server, downloads: Path
) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=4)
    url = http_server.add_file("/blocked.bin", data, faults=Faults(rate_per_connection=4_000_000))
    release, entered = threading.Event(), threading.Event()

    def blocking(info: DownloadInfo) -> None:
        entered.set()
        release.wait(30)

    done = Calls()
    try:
        with manager(FAST.replace(connections=2)) as m:
            download_id = m.add(url, str(downloads) + "/", on_progress=blocking, on_done=done)
            assert entered.wait(10)
            # Called on the engine's threads, the callback would stall the transfer until
            # released: the download finishes while it still blocks.
            info = m.wait(download_id, timeout=20)
            assert info.state is State.DONE, info.state
            assert not done.calls, "on_done came before the blocked callback returned"
            release.set()
            assert done.done.wait(5)
    finally:
        release.set()
    assert sha256(Path(info.dest)) == sha256(data)


def test_on_done_for_every_ending(http_server, downloads: Path) -> None:
    url = http_server.add_file("/small.bin", b"small file")
    missing = http_server.base_url + "/missing.bin"
    slow, _data = slow_file(http_server, "/cancelled.bin")
    finished, again, failed, cancelled = Calls(), Calls(), Calls(), Calls()
    with manager(FAST.replace(retries=0)) as m:
        download_id = m.add(url, str(downloads) + "/", on_done=finished)
        m.wait(download_id)
        # Added again: the file is there already, so it is done at once.
        assert m.add(url, str(downloads) + "/", on_done=again) == download_id
        m.wait(m.add(missing, str(downloads) + "/", on_done=failed))
        cancel_id = m.add(slow, str(downloads) + "/", on_done=cancelled)
        m.cancel(cancel_id)
        for calls in (finished, again, failed, cancelled):
            assert calls.done.wait(5)
    assert [i.state for i in finished.infos] == [State.DONE]
    assert [i.state for i in again.infos] == [State.DONE]
    assert [i.state for i in failed.infos] == [State.FAILED]
    assert [i.state for i in cancelled.infos] == [State.CANCELLED]
    assert {*finished.threads, *again.threads, *failed.threads, *cancelled.threads} == {
        CALLBACK_THREAD}


def test_no_callback_thread_without_callbacks(http_server, downloads: Path) -> None:
    url = http_server.add_file("/plain.bin", b"plain")
    with manager() as m:
        m.wait(m.add(url, str(downloads) + "/"))
        assert CALLBACK_THREAD not in {t.name for t in threading.enumerate()}
    with manager() as m:
        m.wait(m.add(url, str(downloads) + "/", again=True, on_done=lambda info: None))
        assert CALLBACK_THREAD in {t.name for t in threading.enumerate()}
    assert CALLBACK_THREAD not in {t.name for t in threading.enumerate()}, "close ends it"
