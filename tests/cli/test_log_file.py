"""laden.log tells a user debugging a failure what laden did (issue 21: it stayed empty)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.helpers import run_laden, sha256
from servers.fixtures import random_bytes
from servers.http_server import Faults


def _log(laden_dirs: dict[str, Path]) -> str:
    return (laden_dirs["logs"] / "laden.log").read_text(encoding="utf-8")


def test_requests_retries_verdicts_and_states_are_logged(
        http_server, downloads: Path, laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(3_000_000, seed=2141)
    url = http_server.add_file("/logged.bin", data,
                               faults=Faults(status_sequence=[(503, {})]))
    secret = url.replace("http://", "http://alice:hunter2@")
    result = run_laden("get", "--log-level", "debug", "-c", "2", "-o", str(downloads),
                       "--checksum", f"sha256:{sha256(data)}", secret)
    assert result.returncode == 0, result.stderr
    text = _log(laden_dirs)
    assert "hunter2" not in text and "alice" not in text
    assert f"download 1 added: {url} -> {downloads / 'logged.bin'}" in text
    # Each request: method, address, range, answer, time.
    assert re.search(rf"GET {re.escape(url)} bytes 0-999999 -> 503 in \d+\.\d+ s", text), text
    assert re.search(rf"GET {re.escape(url)} bytes \d+-\d+ -> 206 in \d+\.\d+ s", text), text
    assert re.search(r"download 1: HTTP 503 .*; retry 1 of 5, trying again in", text), text
    assert "download 1: sha256 (you) matches" in text
    for change in ("queued -> connecting", "connecting -> downloading",
                   "downloading -> verifying", "verifying -> done"):
        assert f"download 1: {change}" in text


def test_a_failure_is_in_the_log_at_the_default_level(
        http_server, downloads: Path, laden_dirs: dict[str, Path]) -> None:
    url = http_server.add_file("/gone.bin", b"x", faults=Faults(status_sequence=[(404, {})]))
    result = run_laden("get", "-o", str(downloads), url)
    assert result.returncode != 0
    text = _log(laden_dirs)
    assert re.search(r"WARNING laden\.events: download 1: connecting -> failed: HTTP 404", text)
    assert "GET " not in text  # requests only at debug
