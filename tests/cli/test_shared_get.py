"""The ranks of a training job all run `laden get` (or `laden.download`) at once with one state
folder: one download, every process ending with the same finished file or the same error."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.helpers import part_files, run_laden
from servers.http_server import Faults

DATA = os.urandom(3_000_000)
RANKS = 8


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "laden", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "120"})


def _wait_for_bytes(downloads: Path) -> None:
    """Until the owner has written into its partial file."""
    deadline = time.monotonic() + 30
    while not part_files(downloads) or part_files(downloads)[0].stat().st_size == 0:
        assert time.monotonic() < deadline, "the owner never started writing"
        time.sleep(0.05)


def _gets(server, path: str) -> list:
    return [r for r in server.requests if r.method == "GET" and r.path.split("?")[0] == path]


def test_eight_ranks_started_at_once_make_one_download(http_server, downloads: Path) -> None:
    url = http_server.add_file("/model.bin", DATA, faults=Faults(rate_per_connection=1_000_000))
    ranks = [_start("get", "-c", "2", "-o", str(downloads), url) for _ in range(RANKS)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in ranks]
    assert [code for code, _, _ in results] == [0] * RANKS, results
    saved = list(downloads.iterdir())
    assert [p.name for p in saved] == ["model.bin"]
    assert hashlib.sha256(saved[0].read_bytes()).digest() == hashlib.sha256(DATA).digest()
    # Every rank says where the file is, as if it had fetched it.
    assert all(f"saved {saved[0]}" in out for _, out, _ in results), results
    waiting = [err for _, _, err in results if "is already fetching this" in err]
    assert len(waiting) >= RANKS - 2, results  # a late rank may find the file already there
    # One transfer: one process's requests (a probe and two connections), bytes sent once.
    ports = {r.client_port for r in _gets(http_server, "/model.bin")}
    assert len(_gets(http_server, "/model.bin")) <= 4 and len(ports) <= 3, ports


def test_a_waiter_takes_over_when_the_owner_is_killed(http_server, downloads: Path) -> None:
    url = http_server.add_file("/big.bin", DATA, faults=Faults(rate_per_connection=300_000))
    owner = _start("get", "-q", "-c", "1", "-o", str(downloads), url)
    _wait_for_bytes(downloads)
    waiter = _start("get", "-c", "2", "-o", str(downloads), url)
    time.sleep(1.0)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    code, out, err = waiter.wait(timeout=120), *waiter.communicate()
    assert code == 0, (out, err)
    assert (downloads / "big.bin").read_bytes() == DATA
    assert not part_files(downloads)


def test_the_owners_error_is_every_waiters_error(http_server, downloads: Path) -> None:
    # Busy for about three seconds (the waiter joins meanwhile), then gone.
    answers = [(503, {"Retry-After": "1"})] * 3 + [(404, {})] * 20
    url = http_server.add_file("/gone.bin", DATA, faults=Faults(status_sequence=answers))
    owner = _start("get", "-q", "-o", str(downloads), url)
    time.sleep(0.8)
    waiter = _start("get", "-o", str(downloads), url)
    codes = [owner.wait(timeout=120), waiter.wait(timeout=120)]
    _, err = waiter.communicate()
    assert codes[0] == codes[1] != 0, (codes, err)
    assert "is already fetching this" in err and "404" in err and "Traceback" not in err
    assert not list(downloads.iterdir())


def test_another_address_still_finds_the_folder_busy(http_server, downloads: Path) -> None:
    slow = http_server.add_file("/slow.bin", DATA, faults=Faults(rate_per_connection=300_000))
    other = http_server.add_file("/other.bin", b"o" * 1000)
    owner = _start("get", "-q", "-c", "1", "-o", str(downloads), slow)
    try:
        time.sleep(1.0)
        second = run_laden("get", "-o", str(downloads), other, timeout=30)
        assert second.returncode == 3, second.stderr
        assert "another laden is using" in second.stderr and str(owner.pid) in second.stderr
        same = run_laden("get", "--no-wait", "-o", str(downloads), slow, timeout=30)
        assert same.returncode == 3 and "another laden is using" in same.stderr
    finally:
        owner.kill()
        owner.wait()


def test_the_python_api_shares_one_download_between_processes(http_server,
                                                              downloads: Path) -> None:
    url = http_server.add_file("/api.bin", DATA, faults=Faults(rate_per_connection=1_000_000))
    code = ("import sys, laden\n"
            "options = laden.DownloadOptions(connections=2)\n"
            "print(laden.download(sys.argv[1], sys.argv[2], options=options))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, str(downloads)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [c for c, _, _ in results] == [0] * 4, results
    assert {out.strip() for _, out, _ in results} == {repr([str(downloads / "api.bin")])}
    assert (downloads / "api.bin").read_bytes() == DATA
    assert len({r.client_port for r in _gets(http_server, "/api.bin")}) <= 3


def test_a_waiter_shows_the_owners_progress(http_server, downloads: Path) -> None:
    url = http_server.add_file("/shown.bin", DATA, faults=Faults(rate_per_connection=600_000))
    owner = _start("get", "-q", "-c", "1", "-o", str(downloads), url)
    _wait_for_bytes(downloads)
    waiter = _start("get", "-o", str(downloads), url)  # not a terminal: plain lines
    codes = [owner.wait(timeout=120), waiter.wait(timeout=120)]
    out, err = waiter.communicate()
    assert codes == [0, 0], (out, err)
    # The owner's download as the waiter's own would be shown, then what it got.
    assert "shown.bin downloading" in out, out
    assert f"saved {downloads / 'shown.bin'}" in out.splitlines()[-1], out
