"""Pause, resume and restarts: progress survives, and two versions are never stitched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from laden.core.states import State
from laden.sources.http import PROBE_RANGE
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, journalled_bytes, manager, part_files, sha256, wait_for

SLOW = Faults(rate_per_connection=400_000)


def test_pause_and_resume_in_one_process(http_server, downloads: Path) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=10)
    url = http_server.add_file("/p.bin", data, faults=SLOW)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 500_000)
        m.pause(download_id)
        paused = m.wait(download_id)
        assert paused.state is State.PAUSED
        time.sleep(0.3)
        still = m.get(download_id).done
        assert still == paused.done or still >= paused.done  # no more bytes once settled
        http_server.set_faults("/p.bin", Faults())
        http_server.clear_log()
        m.resume(download_id)
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert all(r.range != "bytes=0-" for r in http_server.requests), "resume must not refetch"


def test_resume_after_restart_of_the_manager(http_server, downloads: Path) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=11)
    url = http_server.add_file("/r.bin", data, faults=SLOW)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 1_000_000)
    # closed while running: the next manager that resumes interrupted downloads continues it
    http_server.set_faults("/r.bin", Faults())
    http_server.clear_log()
    with manager(resume_interrupted=True) as m:
        before = m.get(download_id)
        assert before.done > 0 and before.state is not State.PAUSED
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    # A split connection asks for more than it reads, so look at where requests start: never
    # inside bytes that were on disk before the restart.
    starts = [int(r.range.split("=")[1].split("-")[0]) for r in http_server.requests
              if r.range and r.range != PROBE_RANGE]
    assert starts
    for start in starts:
        assert not any(s <= start < e for s, e in before.done_ranges), start


def test_interrupted_downloads_wait_unless_asked(http_server, downloads: Path) -> None:
    url = http_server.add_file("/w.bin", random_bytes(2_000_000, seed=12), faults=SLOW)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 100_000)
    with manager() as m:  # e.g. `laden get` of another file: leaves this one alone
        time.sleep(0.5)
        assert m.get(download_id).state is State.QUEUED
        assert m.get(download_id).connections == ()


def test_changed_remote_file_restarts_instead_of_stitching(http_server, downloads: Path) -> None:
    old = random_bytes(3 * 1024 * 1024, seed=20)
    new = random_bytes(3 * 1024 * 1024, seed=21)
    url = http_server.add_file("/c.bin", old, faults=SLOW)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 500_000)
        m.pause(download_id)
        m.wait(download_id)
        http_server.set_content("/c.bin", new)
        http_server.set_faults("/c.bin", Faults())
        m.resume(download_id)
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(new)
    assert any("changed" in e.message for e in info.errors)


def test_etag_changing_mid_download_restarts(http_server, downloads: Path) -> None:
    old = random_bytes(3 * 1024 * 1024, seed=22)
    new = random_bytes(3 * 1024 * 1024, seed=23)
    # One connection that drops after 1 MB: its next request carries If-Range with the old
    # ETag, the server answers 200 with the new file, and laden must start again from zero.
    faults = Faults(rate_per_connection=600_000, drop_after=1_000_000, drop_times=1)
    url = http_server.add_file("/m.bin", old, faults=faults)
    with manager(FAST.replace(connections=1)) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 300_000)
        http_server.set_content("/m.bin", new)
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(new)
    assert any("changed" in e.message for e in info.errors)
    assert any(r.headers.get("if-range") and r.status == 200 for r in http_server.requests)


def test_kill_9_then_rerun_gives_identical_file(http_server, downloads: Path) -> None:
    data = random_bytes(6 * 1024 * 1024, seed=30)
    url = http_server.add_file("/k.bin", data, faults=Faults(rate_per_connection=500_000))
    command = [sys.executable, "-m", "laden", "get", "-q", "-o", str(downloads), url]
    for _ in range(2):
        process = subprocess.Popen(command, env=os.environ.copy())
        before_run = journalled_bytes(downloads.parent / "state")
        wait_for(lambda before_run=before_run: part_files(downloads)
                 and journalled_bytes(downloads.parent / "state") > before_run)
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        process.wait()
    http_server.set_faults("/k.bin", Faults())
    before = journalled_bytes(downloads.parent / "state")
    done = subprocess.run([*command[:-1], "--json", command[-1]], env=os.environ.copy(),
                          timeout=60, capture_output=True, text=True)
    assert done.returncode == 0
    import json

    started = next(json.loads(line) for line in done.stdout.splitlines()
                   if json.loads(line)["event"] == "started")
    assert started["done"] >= before > 0, "the rerun must go on from the bytes on disk"
    assert sha256(downloads / "k.bin") == sha256(data)
    assert part_files(downloads) == []




def test_ctrl_c_pauses_and_the_same_command_resumes(http_server, downloads: Path) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=31)
    url = http_server.add_file("/i.bin", data, faults=SLOW)
    command = [sys.executable, "-m", "laden", "get", "-o", str(downloads), url]
    # Ctrl-C as at a terminal, however the suite was started: a shell that starts a command in
    # the background without job control (`bash -c 'bash .ci/run' &`) has it ignore SIGINT,
    # and the child would inherit that and finish as if nothing happened.
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: part_files(downloads) != [])
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "run the same command again to resume" in err
    assert "Traceback" not in err
    http_server.set_faults("/i.bin", Faults())
    again = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert sha256(downloads / "i.bin") == sha256(data)



def test_after_a_reboot_only_flushed_bytes_are_trusted(http_server, downloads: Path,
                                                       laden_dirs) -> None:
    """A power cut loses the page cache: bytes written but never flushed must be fetched again,
    while after a crash of laden alone (same boot) they are kept."""
    import json
    import sqlite3

    data = random_bytes(3 * 1024 * 1024, seed=70)
    url = http_server.add_file("/boot.bin", data, faults=SLOW)
    config = FAST.replace(flush_interval=3600)  # nothing is forced to disk on the way
    with manager(config) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 600_000)
        m.pause(download_id)
        written = m.wait(download_id).done
    with manager(config) as m:  # same boot: everything written is still there
        assert m.get(download_id).done == written
    db = sqlite3.connect(laden_dirs["state"] / "journal.sqlite3")
    (raw,) = db.execute("SELECT data FROM downloads WHERE id = ?", (download_id,)).fetchone()
    record = json.loads(raw)
    assert record["flushed_ranges"] == []
    record["boot_id"] = "an-earlier-boot"
    db.execute("UPDATE downloads SET data = ? WHERE id = ?", (json.dumps(record), download_id))
    db.commit()
    db.close()
    http_server.set_faults("/boot.bin", Faults())
    with manager(config) as m:  # "after a power cut": nothing was flushed, nothing is trusted
        assert m.get(download_id).done == 0
        m.resume(download_id)
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_flushed_ranges_are_recorded(http_server, downloads: Path) -> None:
    url = http_server.add_file("/flush.bin", random_bytes(3 * 1024 * 1024, seed=71),
                               faults=SLOW)
    with manager(FAST.replace(flush_interval=0.3)) as m:
        download_id = m.add(url, str(downloads))
        wait_for(lambda: m.get(download_id).done > 1_000_000)
        m.pause(download_id)
        m.wait(download_id)
        record = m._get(download_id).record
        flushed = sum(e - s for s, e in record.flushed_ranges)
        assert 0 < flushed <= sum(e - s for s, e in record.done_ranges)
