"""kill -9 of the app (`laden URL`, on a pseudo-terminal as a person would run it), then `laden`
again: the interrupted download carries on by itself and ends byte-identical."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from . import figures
from .helpers import check_recorded_bytes, journal_opens_cleanly, journal_records, wait_for


class TerminalApp:
    """`laden ARGS` on its own pseudo-terminal (120x35, xterm-256color); the screen output is
    read and thrown away, as a terminal would show it, so the app never blocks writing."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 35, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "35"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "laden", *args], stdin=slave, stdout=slave, stderr=slave,
            env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self._master = master
        self.screen = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen += data[-4096:]  # enough to read an error message

    def kill(self, *, count: bool = True) -> None:
        if count:
            figures.kill_made()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        os.close(self._master)

    def running(self) -> bool:
        return self.process.poll() is None


@pytest.mark.slow
def test_kill_9_of_the_app_then_laden_again_continues(http_server: FileServer, downloads: Path,
                                                       laden_dirs: dict[str, Path]) -> None:
    (laden_dirs["config"] / "config.toml").write_text(f'download_dir = "{downloads}"\n')
    data = random_bytes(8 << 20, seed=750)
    # 8 connections at 200 kB/s: about 5 s for the whole file, so both kills land mid-way.
    url = http_server.add_file("/app.bin", data, faults=Faults(rate_per_connection=200_000))
    state = laden_dirs["state"]

    def done_bytes() -> int:
        records = journal_records(state)
        return sum(e - s for s, e in records[0]["done_ranges"]) if records else 0

    app = TerminalApp(url)
    wait_for(lambda: done_bytes() > 1 << 20 or not app.running(), timeout=30,
             what="the first MiB on disk")
    assert app.running(), app.screen.decode(errors="replace")
    app.kill()
    kept = journal_opens_cleanly(state)[0]
    assert kept.state in ("downloading", "connecting") and kept.done_ranges
    check_recorded_bytes(Path(kept.dest + ".laden-part"), data, kept.done_ranges)
    figures.kill_survived()

    # `laden` with no address: the saved session, and the interrupted download resumes.
    again = TerminalApp()
    before = done_bytes()
    wait_for(lambda: done_bytes() > before + (1 << 20) or not again.running(), timeout=30,
             what="the download to carry on by itself")
    assert again.running(), again.screen.decode(errors="replace")
    again.kill()
    figures.kill_survived()
    http_server.set_faults("/app.bin", Faults())

    last = TerminalApp()
    try:
        wait_for(lambda: (downloads / "app.bin").exists() or not last.running(), timeout=30,
                 what="the finished file")
        assert (downloads / "app.bin").read_bytes() == data
        wait_for(lambda: journal_records(state)[0]["state"] == "done", timeout=10,
                 what="the journal to record it")
    finally:
        if last.running():
            last.kill(count=False)  # the app stays open after a download; this just ends it
    assert journal_records(state)[0]["dest"] == str(downloads / "app.bin")
    assert not (downloads / "app.bin.laden-part").exists()
    assert len(journal_records(state)) == 1, "the app started a second download"
