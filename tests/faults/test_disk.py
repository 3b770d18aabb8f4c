"""Disk faults: a full disk pauses a download without losing a byte and it goes on once space is
freed; the free space is checked before starting; a folder that disappears or turns read-only
gets a clear message; a final name taken meanwhile is handled by the conflict policy.

Real small file systems (tmpfs) are used where the machine allows mounting them (root); the
injected-ENOSPC tests run everywhere and cover the same promises.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from engine.helpers import FAST, manager, run_laden, sha256
from laden.core.states import State
from laden.engine.manager import DownloadManager
from laden.sources.http import PROBE_RANGE
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from .helpers import check_recorded_bytes, journal_records, part_files, wait_for

SLOW = Faults(rate_per_connection=400_000)


def _fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of `folder` up to `leave` free bytes with one file."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave
    with open(filler, "wb") as handle:
        try:
            while free > 0:
                handle.write(b"\xee" * min(free, 1 << 20))
                free -= 1 << 20
            handle.flush()
        except OSError:
            pass
    return filler


def _wait_state(m: DownloadManager, download_id: int, *states: State,
                timeout: float = 20) -> Any:
    wait_for(lambda: m.get(download_id).state in states and m.queue.get(download_id).transfer
             is None, timeout=timeout, what=f"state {states}")
    return m.get(download_id)


def _assert_nothing_refetched(server: FileServer, kept: tuple[tuple[int, int], ...]) -> None:
    """No request after the fault starts inside bytes that were already on disk (a split
    connection asks for more than it reads, so starts are what tell)."""
    starts = [int(r.range.split("=")[1].split("-")[0]) for r in server.requests
              if r.range and r.range != PROBE_RANGE]
    assert starts
    for start in starts:
        assert not any(s <= start < e for s, e in kept), f"bytes at {start} fetched again"


# -- free space before starting --------------------------------------------------------------


def test_too_big_for_the_disk_fails_at_once_with_the_numbers(
        small_disk: Path, http_server: FileServer) -> None:
    url = http_server.add_file("/big.bin", random_bytes(12 << 20, seed=801))
    began = time.monotonic()
    result = run_laden("get", "-q", "-o", str(small_disk), url)
    assert time.monotonic() - began < 10
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "not enough free space" in line and "12.0 MiB" in line and "8.0 MiB" in line, line
    assert len(line.splitlines()) == 1
    assert list(small_disk.iterdir()) == [], "nothing may be written when it cannot fit"


def test_paused_for_space_resumes_once_space_is_freed(
        small_disk: Path, http_server: FileServer) -> None:
    data = random_bytes(4 << 20, seed=802)
    url = http_server.add_file("/wait.bin", data)
    filler = _fill(small_disk, leave=2 << 20)
    with manager() as m:
        download_id = m.add(url, str(small_disk) + "/")
        info = _wait_state(m, download_id, State.PAUSED)
        assert "not enough free space" in info.message
        time.sleep(1.5)  # still not enough room: it must stay paused, not spin
        assert m.get(download_id).state is State.PAUSED
        filler.unlink()
        info = _wait_state(m, download_id, State.DONE, timeout=10)
    assert sha256(Path(info.dest)) == sha256(data)


def test_your_pause_wins_over_waiting_for_space(small_disk: Path,
                                                http_server: FileServer) -> None:
    url = http_server.add_file("/mine.bin", random_bytes(4 << 20, seed=803))
    filler = _fill(small_disk, leave=1 << 20)
    with manager() as m:
        download_id = m.add(url, str(small_disk) + "/")
        _wait_state(m, download_id, State.PAUSED)
        m.pause(download_id)  # the user says: stay paused
        filler.unlink()
        time.sleep(2.5)
        assert m.get(download_id).state is State.PAUSED


# -- a disk that fills up during the download ------------------------------------------------


def _no_preallocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system that cannot preallocate (as many network mounts): the partial file is
    sparse, so a full disk shows up in the middle of the download instead of at the start."""
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)


def test_disk_fills_up_mid_download_real_enospc(
        small_disk: Path, http_server: FileServer, laden_dirs: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _no_preallocation(monkeypatch)
    data = random_bytes(6 << 20, seed=804)
    url = http_server.add_file("/fill.bin", data, faults=SLOW)
    with manager(FAST.replace(connections=4)) as m:
        download_id = m.add(url, str(small_disk) + "/")
        wait_for(lambda: m.get(download_id).done > 1 << 20, what="the first MiB")
        filler = _fill(small_disk)  # another program takes every free byte
        info = _wait_state(m, download_id, State.PAUSED)
        assert "the disk is full" in info.message, info.message
        kept = m.get(download_id).done_ranges
        assert sum(e - s for s, e in kept) > 1 << 20
        record = next(r for r in journal_records(laden_dirs["state"]) if r["id"] == download_id)
        check_recorded_bytes(Path(info.dest + ".laden-part"), data, record["done_ranges"])
        http_server.clear_log()
        http_server.set_faults("/fill.bin", Faults())
        filler.unlink()
        info = _wait_state(m, download_id, State.DONE, timeout=15)
    assert sha256(Path(info.dest)) == sha256(data)
    _assert_nothing_refetched(http_server, kept)


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def test_disk_fills_up_mid_download_injected(http_server: FileServer, downloads: Path,
                                             laden_dirs: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same promise where no file system can be mounted: ENOSPC from the storage layer's
    writes, and a free-space figure that says so, until space is 'freed'."""
    data = random_bytes(5 << 20, seed=805)
    url = http_server.add_file("/inject.bin", data, faults=SLOW)
    full = threading.Event()
    real_pwrite, real_usage = os.pwrite, shutil.disk_usage

    def pwrite(fd: int, buffer: Any, offset: int) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, buffer, offset)

    def disk_usage(path: Any) -> Any:
        usage = real_usage(path)
        return _Usage(usage.total, usage.used, 0 if full.is_set() else usage.free)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    with manager(FAST.replace(connections=4)) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 1 << 20, what="the first MiB")
        full.set()
        info = _wait_state(m, download_id, State.PAUSED)
        assert "the disk is full" in info.message
        kept = info.done_ranges
        record = next(r for r in journal_records(laden_dirs["state"]) if r["id"] == download_id)
        check_recorded_bytes(Path(info.dest + ".laden-part"), data, record["done_ranges"])
        assert tuple(record["done_ranges"]) == kept
        time.sleep(1.5)
        assert m.get(download_id).state is State.PAUSED, "resumed while the disk is still full"
        http_server.clear_log()
        http_server.set_faults("/inject.bin", Faults())
        full.clear()
        info = _wait_state(m, download_id, State.DONE, timeout=15)
    assert sha256(Path(info.dest)) == sha256(data)
    _assert_nothing_refetched(http_server, kept)


def test_journal_disk_fills_up_mid_download(small_disk: Path, http_server: FileServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The state folder on the disk that fills up (the usual case: both under $HOME). The
    partial file is preallocated, so it is the journal's next write that finds no room."""
    state = small_disk / "state"
    monkeypatch.setenv("LADEN_STATE_DIR", str(state))
    data = random_bytes(3 << 20, seed=806)
    url = http_server.add_file("/journal-full.bin", data, faults=SLOW)
    with manager(FAST.replace(connections=2)) as m:
        download_id = m.add(url, str(small_disk / "files") + "/")
        wait_for(lambda: m.get(download_id).done > 300_000, what="the first bytes")
        filler = _fill(small_disk)
        info = _wait_state(m, download_id, State.PAUSED)
        assert "journal" in info.message and "full" in info.message, info.message
        filler.unlink()
        info = _wait_state(m, download_id, State.DONE, timeout=15)
    assert sha256(Path(info.dest)) == sha256(data)


# -- the folder disappears or turns read-only ------------------------------------------------


def test_download_folder_deleted_mid_download(http_server: FileServer, tmp_path: Path) -> None:
    data = random_bytes(4 << 20, seed=807)
    url = http_server.add_file("/gone.bin", data, faults=SLOW)
    folder = tmp_path / "will-vanish"
    with manager() as m:
        download_id = m.add(url, str(folder) + "/")
        wait_for(lambda: m.get(download_id).done > 500_000, what="the first bytes")
        shutil.rmtree(folder)
        began = time.monotonic()
        info = _wait_state(m, download_id, State.PAUSED, State.FAILED)
        assert time.monotonic() - began < 5, "it went on writing into a deleted file"
        assert "deleted" in info.message or "no longer exists" in info.message, info.message
        assert not folder.exists() or not any(folder.iterdir())
        http_server.set_faults("/gone.bin", Faults())
        m.resume(download_id)  # the folder comes back, the download starts again
        info = _wait_state(m, download_id, State.DONE, State.FAILED)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_download_folder_deleted_under_the_command_line(http_server: FileServer,
                                                        tmp_path: Path) -> None:
    url = http_server.add_file("/gone2.bin", random_bytes(4 << 20, seed=808), faults=SLOW)
    folder = tmp_path / "vanishing"
    process = subprocess.Popen(
        [*_laden(), "get", "-q", "-o", str(folder), url], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: part_files(folder) and part_files(folder)[0].stat().st_blocks > 0,
             what="the partial file")
    time.sleep(0.5)
    shutil.rmtree(folder)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "deleted" in err or "no longer exists" in err


def test_read_only_file_system_mid_download_injected(
        http_server: FileServer, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux refuses to remount a file system read-only while a file on it is open for
    writing ("mount point is busy"), except when it does so itself after an I/O error (ext4
    errors=remount-ro): then every write fails with EROFS. That case, injected."""
    data = random_bytes(3 << 20, seed=809)
    url = http_server.add_file("/ro.bin", data, faults=SLOW)
    broken = threading.Event()
    real_pwrite = os.pwrite

    def pwrite(fd: int, buffer: Any, offset: int) -> int:
        if broken.is_set():
            raise OSError(errno.EROFS, "Read-only file system")
        return real_pwrite(fd, buffer, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 300_000, what="the first bytes")
        broken.set()
        info = _wait_state(m, download_id, State.PAUSED, State.FAILED)
        assert "read-only" in info.message, info.message
        time.sleep(1.5)
        assert m.get(download_id).state is info.state, "read-only is not a full disk: no retry"
        assert not (downloads / "ro.bin").exists()
        broken.clear()
        http_server.set_faults("/ro.bin", Faults())
        m.resume(download_id)
        info = _wait_state(m, download_id, State.DONE, State.FAILED)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_read_only_between_sessions_real(small_disk: Path, http_server: FileServer) -> None:
    data = random_bytes(3 << 20, seed=810)
    url = http_server.add_file("/ro2.bin", data, faults=SLOW)
    with manager() as m:
        download_id = m.add(url, str(small_disk) + "/")
        wait_for(lambda: m.get(download_id).done > 300_000, what="the first bytes")
        m.pause(download_id)
        kept = _wait_state(m, download_id, State.PAUSED).done_ranges
        assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
        try:
            m.resume(download_id)
            info = _wait_state(m, download_id, State.PAUSED, State.FAILED)
            assert "read-only" in info.message, info.message
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        http_server.set_faults("/ro2.bin", Faults())
        http_server.clear_log()
        m.resume(download_id)
        info = _wait_state(m, download_id, State.DONE, State.FAILED)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    _assert_nothing_refetched(http_server, kept)


def test_read_only_folder_from_the_start_is_one_clear_line(
        small_disk: Path, http_server: FileServer) -> None:
    url = http_server.add_file("/ro3.bin", b"r" * 1000)
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
    try:
        result = run_laden("get", "-o", str(small_disk), url)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "read-only" in result.stderr, result.stderr


# -- the final name taken during the download ------------------------------------------------


@pytest.mark.parametrize("policy", ["rename", "overwrite", "skip"])
def test_final_name_taken_during_the_download(policy: str, http_server: FileServer,
                                              downloads: Path) -> None:
    data = random_bytes(2 << 20, seed=811)
    url = http_server.add_file("/taken.bin", data, faults=SLOW)
    theirs = b"a file someone else put here"
    with manager(FAST.replace(conflict=policy)) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 100_000, what="the first bytes")
        (downloads / "taken.bin").write_bytes(theirs)
        info = _wait_state(m, download_id, State.DONE, State.FAILED)
    if policy == "rename":
        assert info.state is State.DONE
        assert (downloads / "taken.bin").read_bytes() == theirs
        assert Path(info.dest).name == "taken.1.bin" and sha256(Path(info.dest)) == sha256(data)
    elif policy == "overwrite":
        assert info.state is State.DONE
        assert (downloads / "taken.bin").read_bytes() == data
    else:
        assert info.state is State.FAILED and "appeared during the download" in info.message
        assert (downloads / "taken.bin").read_bytes() == theirs
        assert part_files(downloads), "the downloaded bytes must be kept"


def _laden() -> list[str]:
    import sys

    return [sys.executable, "-m", "laden"]

