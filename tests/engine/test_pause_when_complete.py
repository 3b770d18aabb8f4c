"""A pause that arrives once every byte is written finishes the download instead (issue 21)."""

from __future__ import annotations

from pathlib import Path

from laden.core.states import State
from laden.engine import events
from servers.fixtures import random_bytes

from .helpers import manager, part_files, sha256


def _pause_when(mgr, download_ids: list[int], ready) -> None:
    """Pause the download from the engine's own thread at the moment `ready(event)` holds."""
    paused: list[int] = []

    def listener(event: events.Event) -> None:
        if event.download_id in download_ids and not paused and ready(event):
            paused.append(event.download_id)
            mgr.pause(event.download_id)

    mgr.subscribe(listener)


def test_a_pause_after_the_last_byte_finishes_the_file(http_server, downloads: Path) -> None:
    data = random_bytes(3_000_000, seed=2101)
    url = http_server.add_file("/whole.bin", data)
    with manager() as mgr:
        ids: list[int] = []
        _pause_when(mgr, ids, lambda e: isinstance(e, events.Progress)
                    and e.info.state is State.DOWNLOADING and e.info.done == len(data))
        ids.append(mgr.add(url, str(downloads) + "/", start=False))
        mgr.resume(ids[0])
        info = mgr.wait(ids[0], timeout=30)
    assert info.state is State.DONE
    assert sha256(downloads / "whole.bin") == sha256(data)
    assert part_files(downloads) == []


def test_a_pause_while_verifying_finishes_the_file(http_server, downloads: Path) -> None:
    data = random_bytes(3_000_000, seed=2102)
    url = http_server.add_file("/checked.bin", data)
    with manager() as mgr:
        ids: list[int] = []
        _pause_when(mgr, ids, lambda e: isinstance(e, events.StateChanged)
                    and e.new is State.VERIFYING)
        ids.append(mgr.add(url, str(downloads) + "/", checksum=f"sha256:{sha256(data)}",
                           start=False))
        mgr.resume(ids[0])
        info = mgr.wait(ids[0], timeout=30)
    assert info.state is State.DONE
    assert (downloads / "checked.bin").read_bytes() == data
    assert part_files(downloads) == []


def test_a_pause_midway_still_pauses(http_server, downloads: Path) -> None:
    from servers.http_server import Faults

    data = random_bytes(2_000_000, seed=2103)
    url = http_server.add_file("/slow.bin", data, faults=Faults(rate_per_connection=200_000))
    with manager() as mgr:
        ids: list[int] = []
        _pause_when(mgr, ids, lambda e: isinstance(e, events.Progress)
                    and e.info.state is State.DOWNLOADING and 0 < e.info.done < len(data))
        ids.append(mgr.add(url, str(downloads) + "/", start=False))
        mgr.resume(ids[0])
        info = mgr.wait(ids[0], timeout=30)
    assert info.state is State.PAUSED
    assert part_files(downloads)
