"""kill -9 at random moments of uploads to services that take a file in order (GCS, FTP),
then the same command again: no object is named before the commit, the journal never claims
more than the service holds, the rerun sends exactly what the service lacks, and the object
comes out byte-identical. The moments come from test_crash's seed (LADEN_CRASH_SEED).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from laden.engine.uploading.local import pin
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer
from servers.gcs_resumable import GcsResumableServer

from . import figures
from .helpers import journal_opens_cleanly, journal_records, laden_command, start_laden
from .test_crash import SEED, _rng

MiB = 1 << 20


def _killed_after(args: list[str], seconds: float,
                  started: Callable[[], bool] = lambda: True) -> bool:
    """Start `laden ARGS` and kill it `seconds` after `started()` holds (a busy machine may
    take a second to start Python); False when it finished first."""
    process = start_laden(*args)
    deadline = time.monotonic() + 20
    while not started() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    if process.poll() is not None:
        return False
    figures.kill_made()
    process.kill()
    process.wait(10)
    return True


def _journalled(state: Path) -> int:
    """Bytes the journal counts as at the service."""
    return sum(end - start for r in journal_records(state) for start, end in r["done_ranges"])


@pytest.fixture
def google() -> Iterator[GcsResumableServer]:
    with GcsResumableServer() as server:
        yield server


@pytest.mark.slow
def test_kill_9_during_gcs_upload(google: GcsResumableServer, tmp_path: Path,
                                  laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(5 * 16 * MiB + 4321, seed=801)  # six chunks
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    state = laden_dirs["state"]
    common = ["put", "-q", "--gcs-endpoint-url", google.endpoint, str(path), "gs://b/up.bin"]
    rng = _rng(11)
    kills, held, finished_alone = 0, 0, False
    for _ in range(3):
        asked = len(google.requests)
        if not _killed_after([*common, "--limit-rate", "24M"], rng.uniform(0.1, 2.0),
                             lambda asked=asked: len(google.requests) > asked):
            finished_alone = True  # the upload ended before the kill: the rerun is a new one
            break
        kills += 1
        journal_opens_cleanly(state)
        stored = google.object("b", "up.bin")
        if stored is not None:
            # The last chunk, which is the commit, went in before the kill landed (a resumed
            # upload's last chunks go well within the longest wait): the object is the file.
            assert stored == data, f"a partial object was named (seed {SEED})"
            held = len(data)
            figures.kill_survived()
            break
        held = google.persisted()
        # None yet when the kill came before the first request; never one per run.
        assert len([s for s in google.sessions.values() if not s.finished]) <= 1, \
            f"a session per run (seed {SEED})"
        assert _journalled(state) <= held, f"the journal is ahead of GCS (seed {SEED})"
        figures.kill_survived()
    before = len(google.chunks)
    done = subprocess.run(laden_command(*common), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stderr} (seed {SEED})"
    assert "Traceback" not in done.stderr
    sent = sum(end - start for start, end in google.chunks[before:])
    if not finished_alone:
        figures.NOTES.append(f"GCS upload after {kills} kills: the rerun sent {sent / MiB:.1f} "
                             f"of {len(data) / MiB:.1f} MiB; the session held {held / MiB:.1f}")
        assert sent == len(data) - held, f"seed {SEED}"
    assert hashlib.sha256(google.object("b", "up.bin") or b"").digest() == \
        hashlib.sha256(data).digest(), f"seed {SEED}"


@pytest.mark.slow
def test_kill_9_during_ftp_upload(tmp_path: Path, laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(40 * MiB + 7, seed=802)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    state = laden_dirs["state"]
    rng = _rng(12)
    with FTPTestServer() as server:
        common = ["put", "-q", "-u", f"{server.user}:{server.password}", str(path),
                  f"ftp://127.0.0.1:{server.port}/crash/up.bin"]
        tag = pin(str(path)).tag()  # this version of the file names its temporary file
        temporary = server.root / "crash" / f".up.bin.{tag}.laden-upload"
        kills, held = 0, 0
        for _ in range(3):
            size = temporary.stat().st_size if temporary.exists() else -1
            if not _killed_after([*common, "--limit-rate", "16M"], rng.uniform(0.1, 1.5),
                                 lambda size=size: temporary.exists()
                                 and temporary.stat().st_size > size):
                break
            kills += 1
            journal_opens_cleanly(state)
            final = server.root / "crash" / "up.bin"
            if final.exists():
                # The kill came after the rename and before the journal's record of it (a
                # resumed upload's last bytes go fast): the name holds the whole file.
                assert final.read_bytes() == data, f"a partial object was named (seed {SEED})"
                figures.kill_survived()
                break
            time.sleep(0.2)  # the server writes what its side of the socket still held
            held = temporary.stat().st_size if temporary.exists() else 0
            assert held <= len(data) and temporary.read_bytes() == data[:held] \
                if temporary.exists() else True, f"the temporary file is wrong (seed {SEED})"
            figures.kill_survived()
        done = subprocess.run(laden_command(*common), capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"{done.stderr} (seed {SEED})"
        final = (server.root / "crash" / "up.bin").read_bytes()
    figures.NOTES.append(f"FTP upload after {kills} kills: the server held {held / MiB:.1f} "
                         f"of {len(data) / MiB:.1f} MiB before the rerun")
    assert hashlib.sha256(final).digest() == hashlib.sha256(data).digest(), f"seed {SEED}"
    assert not temporary.exists()
