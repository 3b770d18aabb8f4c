"""The asyncio face: real downloads from the test server, on the default event loop.

Each test runs its coroutine with `asyncio.run`, as a user's script would.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from laden import AsyncDownloadManager, DownloadManager
from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from laden.engine import events
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, part_files, sha256
from .test_callbacks import laden_log  # noqa: F401  (a fixture)


def slow_file(http_server, name: str, size: int = 1_200_000, seed: int = 0,
              rate: int = 300_000) -> tuple[str, bytes]:
    """A file the server sends at `rate` bytes a second per connection."""
    data = random_bytes(size, seed=seed)
    return http_server.add_file(name, data, faults=Faults(rate_per_connection=rate)), data


def test_three_files_at_once_with_progress(http_server, downloads: Path) -> None:
    files = [slow_file(http_server, f"/file{n}.bin", seed=n) for n in range(3)]
    progress: dict[int, list[tuple[float, DownloadInfo]]] = {}
    finished: dict[int, float] = {}
    callback_threads: set[int] = set()

    async def on_progress(info: DownloadInfo) -> None:  # a coroutine function is fine
        callback_threads.add(threading.get_ident())
        progress.setdefault(info.id, []).append((time.monotonic(), info))

    def on_done(info: DownloadInfo) -> None:
        callback_threads.add(threading.get_ident())
        finished[info.id] = time.monotonic()

    async def main() -> tuple[int, list[DownloadInfo]]:
        async with AsyncDownloadManager(FAST.replace(connections=2)) as manager:
            ids = await asyncio.gather(*(
                manager.add(url, str(downloads) + "/", on_progress=on_progress,
                            on_done=on_done)
                for url, _data in files))
            infos = await asyncio.gather(*(manager.wait(i) for i in ids))
        return threading.get_ident(), infos

    loop_thread, infos = asyncio.run(main())
    for info, (_url, data) in zip(infos, files, strict=True):
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
    assert callback_threads == {loop_thread}, "callbacks run on the event loop"
    assert set(finished) == {i.id for i in infos}
    # All three ran at once: each had bytes on the way before any of them was done.
    first_bytes = [min(t for t, i in progress[d.id] if i.done > 0) for d in infos]
    assert max(first_bytes) < min(finished.values())
    for calls in progress.values():
        times = [t for t, _i in calls]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(calls) >= 2 and min(gaps) >= 0.15, gaps  # a few a second, not per chunk


def test_cancelling_a_wait_leaves_the_download_running(http_server, downloads: Path) -> None:
    url, data = slow_file(http_server, "/kept.bin")

    async def main() -> tuple[State, State, DownloadInfo]:
        async with AsyncDownloadManager(FAST.replace(connections=2)) as manager:
            download_id = await manager.add(url, str(downloads) + "/")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await manager.wait(download_id)
            after_timeout = (await manager.get(download_id)).state
            task = asyncio.create_task(manager.wait(download_id))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            after_cancel = (await manager.get(download_id)).state
            return after_timeout, after_cancel, await manager.wait(download_id)

    after_timeout, after_cancel, info = asyncio.run(main())
    assert after_timeout.is_active and after_cancel.is_active
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_cancelling_a_wait_can_cancel_the_download(http_server, downloads: Path) -> None:
    url, _data = slow_file(http_server, "/dropped.bin")

    async def main() -> DownloadInfo:
        async with AsyncDownloadManager(FAST.replace(connections=2)) as manager:
            download_id = await manager.add(url, str(downloads) + "/")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await manager.wait(download_id, cancel_download=True)
            # Cancelled by the time the cancellation went on.
            return await manager.get(download_id)

    info = asyncio.run(main())
    assert info.state is State.CANCELLED
    assert part_files(downloads) == [] and not Path(info.dest).exists()


def test_the_event_loop_never_waits_for_the_engine(http_server, downloads: Path) -> None:
    """A heartbeat task ticks every 10 ms while a 64 MiB download runs for about two seconds
    and every method is awaited; a call that blocked the loop would stop it for as long."""
    url, data = slow_file(http_server, "/large.bin", size=64 * 1024 * 1024, seed=5,
                          rate=4_000_000)

    async def main() -> tuple[list[float], DownloadInfo, bool, int]:
        beats: list[float] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            while not stop.is_set():
                beats.append(time.monotonic())
                await asyncio.sleep(0.01)

        beating = asyncio.create_task(heartbeat())
        async with AsyncDownloadManager(FAST.replace(connections=8)) as manager:
            download_id = await manager.add(url, str(downloads) + "/",
                                            checksum="sha256:" + sha256(data))

            async def reading() -> int:
                seen = 0
                async for event in manager.events(download_id):
                    if isinstance(event, events.Progress):
                        seen += 1
                        await manager.list()
                        await manager.get(download_id)
                return seen

            reader = asyncio.create_task(reading())
            info = await manager.wait(download_id)  # while the events are read
            seen = await reader
            verified = (await manager.verify(download_id)).ok
        stop.set()
        await beating
        return beats, info, verified, seen

    beats, info, verified, seen = asyncio.run(main())
    assert beats[-1] - beats[0] > 1.0, "the download should take a while"
    longest = max(b - a for a, b in zip(beats, beats[1:], strict=False))
    # Idle, a beat comes every 10 ms, and under a loaded machine's GIL up to 150 ms apart; a
    # wait that blocked the loop stood it still for the whole download (2.2 s).
    assert longest < 0.5, f"the event loop stood still for {longest:.3f} s"
    assert info.state is State.DONE and verified
    assert seen >= 2, "the events were read while the download ran"


def test_events_of_one_download_end_with_it(http_server, downloads: Path) -> None:
    url, _data = slow_file(http_server, "/events.bin")
    small = http_server.add_file("/small.bin", b"small")

    async def main() -> tuple[list[type], list[type], list[type]]:
        async with AsyncDownloadManager(FAST.replace(connections=2)) as manager:
            everything = manager.events()
            download_id = await manager.add(url, str(downloads) + "/")
            one = [type(e) async for e in manager.events(download_id)]
            small_id = await manager.add(small, str(downloads) + "/")
            await manager.wait(small_id)
            # Opened after the download ended: nothing comes, and it does not hang.
            late = [type(e) async for e in manager.events(small_id)]
            kinds = []
            async for event in everything:
                kinds.append(type(event))
                if event.download_id == small_id and isinstance(event, events.Completed):
                    break
            await everything.aclose()
        return one, late, kinds

    one, late, kinds = asyncio.run(main())
    assert one[-1] is events.Completed and events.Progress in one
    assert events.StateChanged in one
    assert late == []
    assert events.Added in kinds and kinds.count(events.Completed) == 2


def test_async_with_closes_cleanly(http_server, downloads: Path) -> None:
    url, _data = slow_file(http_server, "/interrupted.bin")

    async def main() -> tuple[list[type], DownloadInfo]:
        manager = AsyncDownloadManager(FAST.replace(connections=2))
        async with manager:
            download_id = await manager.add(url, str(downloads) + "/")
            stream = manager.events(download_id)
            waiting = asyncio.create_task(manager.wait(download_id))
            await asyncio.sleep(0.3)
        # Closed: the wait returned and the stream ended instead of hanging.
        info = await asyncio.wait_for(waiting, 5)
        kinds = [type(e) async for e in stream]
        with pytest.raises(RuntimeError, match="closed"):
            await manager.get(download_id)
        return kinds, info

    kinds, info = asyncio.run(main())
    assert info.state is not State.DONE
    assert events.Completed not in kinds
    # The state folder is free again, and the download resumes in the next session.
    with DownloadManager(FAST, resume_interrupted=True) as again:
        assert again.wait(info.id, timeout=30).state is State.DONE


def test_coroutine_callbacks_that_raise_are_logged(
    http_server, downloads: Path, laden_log: list[logging.LogRecord]  # noqa: F811
) -> None:
    url, data = slow_file(http_server, "/raising.bin", size=600_000)

    async def broken(info: DownloadInfo) -> None:
        await asyncio.sleep(0)
        raise ZeroDivisionError("a bug in the caller's coroutine")

    async def main() -> DownloadInfo:
        async with AsyncDownloadManager(FAST.replace(connections=2)) as manager:
            download_id = await manager.add(url, str(downloads) + "/", on_progress=broken,
                                            on_done=broken)
            return await manager.wait(download_id)

    info = asyncio.run(main())
    assert info.state is State.DONE and Path(info.dest).read_bytes() == data
    messages = {r.getMessage() for r in laden_log
                if r.exc_info and r.exc_info[0] is ZeroDivisionError}
    assert f"on_progress of download {info.id} failed" in messages
    assert f"on_done of download {info.id} failed" in messages


def test_one_manager_from_two_event_loops(http_server, downloads: Path) -> None:
    """A manager shared with sync code serves event loops in other threads at once."""
    files = [slow_file(http_server, f"/loop{n}.bin", size=600_000, seed=n) for n in range(2)]
    results: dict[int, DownloadInfo] = {}

    with DownloadManager(FAST.replace(connections=2)) as sync_manager:
        face = AsyncDownloadManager(manager=sync_manager)

        def in_a_thread(n: int) -> None:
            async def main() -> DownloadInfo:
                download_id = await face.add(files[n][0], str(downloads) + "/")
                return await face.wait(download_id)

            results[n] = asyncio.run(main())

        threads = [threading.Thread(target=in_a_thread, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        asyncio.run(face.aclose())
        # The face closed; the manager it was given is still open.
        assert sync_manager.get(results[0].id).state is State.DONE
    for n, (_url, data) in enumerate(files):
        assert results[n].state is State.DONE and Path(results[n].dest).read_bytes() == data


def test_wait_async_of_the_sync_manager(http_server, downloads: Path) -> None:
    url, data = slow_file(http_server, "/plain.bin", size=600_000)

    async def main(manager: DownloadManager) -> DownloadInfo:
        download_id = manager.add(url, str(downloads) + "/")
        task = asyncio.create_task(manager.wait_async(download_id))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await manager.wait_async(download_id)

    with DownloadManager(FAST.replace(connections=2)) as manager:
        info = asyncio.run(main(manager))
    assert info.state is State.DONE and Path(info.dest).read_bytes() == data
