"""`laden list` tells what is true of each download: running, interrupted, or its own state
(issue 21: "connecting 22.9 %" after a kill -9, "connecting 43 %" beside a running laden)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.helpers import journalled_bytes, run_laden, wait_for
from laden.store.lock import StateLock, holder
from servers.fixtures import random_bytes
from servers.http_server import Faults


@contextmanager
def laden_get(url: str, downloads: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "laden", "get", "-q", "-c", "2", "-o", str(downloads), url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _rows(listing: str) -> dict[str, str]:
    """NAME -> STATE from the text table."""
    rows = {}
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 5 and words[0].isdigit():
            rows[words[-1]] = words[1]
    return rows


def _slow_file(http_server, name: str, seed: int) -> str:
    return http_server.add_file(f"/{name}", random_bytes(4_000_000, seed=seed),
                                faults=Faults(rate_per_connection=100_000))


def test_a_killed_download_is_interrupted(http_server, downloads: Path,
                                          laden_dirs: dict[str, Path]) -> None:
    url = _slow_file(http_server, "killed.bin", 2111)
    with laden_get(url, downloads) as process:
        wait_for(lambda: journalled_bytes(laden_dirs["state"], "killed.bin") > 0,
                 what="journalled bytes")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    listing = run_laden("list")
    assert listing.returncode == 0, listing.stderr
    assert _rows(listing.stdout) == {"killed.bin": "interrupted"}
    assert "laden resume --all" in listing.stdout
    as_json = json.loads(run_laden("list", "--json").stdout)
    assert as_json["state"] == "interrupted"


def test_downloads_another_laden_runs_show_as_running(http_server, downloads: Path,
                                                      laden_dirs: dict[str, Path]) -> None:
    stale = _slow_file(http_server, "stale.bin", 2112)
    live = _slow_file(http_server, "live.bin", 2113)
    state = laden_dirs["state"]
    with laden_get(stale, downloads) as first:
        wait_for(lambda: journalled_bytes(state, "stale.bin") > 0, what="journalled bytes")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    with laden_get(live, downloads) as second:
        wait_for(lambda: journalled_bytes(state, "live.bin") > 0, what="journalled bytes")
        listing = run_laden("list")
        assert second.poll() is None
    assert listing.returncode == 0, listing.stderr
    assert f"another laden is at work here (pid {second.pid}: laden get" in listing.stdout
    # The killed one waits in the running laden (not resumed by a get of another file).
    assert _rows(listing.stdout) == {"stale.bin": "queued", "live.bin": "running"}


def test_asking_who_holds_the_lock_never_makes_a_starting_laden_fail(tmp_path: Path) -> None:
    import fcntl

    assert holder(str(tmp_path)) is None
    path = tmp_path / "laden.lock"
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as `holder` holds it, here for longer than an instant
    threading.Timer(0.1, os.close, (fd,)).start()
    lock = StateLock(str(tmp_path))
    lock.acquire()
    try:
        assert holder(str(tmp_path)).startswith(f"pid {os.getpid()}: ")
    finally:
        lock.release()
    assert holder(str(tmp_path)) is None
