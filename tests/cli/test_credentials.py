"""`-u USER` without a password: asked for on a terminal (as curl does), an error without one."""

from __future__ import annotations

import base64
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from engine.helpers import run_laden

PASSWORD = "typed-pw-4711"


def test_a_user_without_a_password_and_no_terminal_is_one_clear_line(downloads: Path) -> None:
    result = run_laden("get", "-u", "ada", "-o", str(downloads), "http://127.0.0.1:9/x",
                       stdin=subprocess.DEVNULL, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "-u 'ada' gives no password and there is no terminal" in result.stderr
    assert "USER:PASSWORD" in result.stderr


def test_a_user_without_a_password_is_asked_on_the_terminal(http_server, downloads: Path) -> None:
    url = http_server.add_file("/private.bin", b"private" * 100)
    token = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
    http_server.require_auth("/private.bin", f"Basic {token}")
    primary, secondary = pty.openpty()
    # A new session has no controlling terminal, so getpass reads the pty given as stdin
    # (never the terminal pytest may run in).
    process = subprocess.Popen(
        [sys.executable, "-m", "laden", "get", "-q", "-u", "ada", "-o", str(downloads), url],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"}, start_new_session=True)
    os.close(secondary)
    try:
        # getpass turns echo off before it asks: typing earlier would show the password.
        shown = _read_until(process, "password for ada: ")
        os.write(primary, f"{PASSWORD}\n".encode())
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    assert "password for ada: " in shown
    assert process.returncode == 0, err
    assert (downloads / "private.bin").read_bytes() == b"private" * 100
    assert PASSWORD not in out.decode() + err.decode() + shown


def _read_until(process: subprocess.Popen[bytes], text: str, timeout: float = 30) -> str:
    """What the process wrote to stderr up to and including `text` (the prompt)."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and process.poll() is None, seen.decode(errors="replace")
        ready, _, _ = select.select([process.stderr], [], [], left)
        if ready:
            seen += os.read(process.stderr.fileno(), 1024)
    return seen.decode(errors="replace")
