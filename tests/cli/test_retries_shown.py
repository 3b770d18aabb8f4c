"""Every retry is shown with its reason and its wait, and a name that does not resolve is not
tried five times (issue 21: 12 to 14 s of silence before a failure)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import run_laden
from laden.cli import main


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_each_retry_of_a_refused_connection_is_in_the_json(downloads: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/x.bin"
    result = run_laden("get", "--json", "--retries", "3", "-o", str(downloads), url)
    assert result.returncode != 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    retries = [e for e in events if e["event"] == "retrying"]
    assert [e["attempt"] for e in retries] == [1, 2, 3]
    for event in retries:
        assert "refused the connection" in event["reason"]
        assert 0 < event["wait"] <= 30 and event["retry_at"] > event["time"] - 1
        assert f"retry {event['attempt']} of 3, trying again in" in event["message"]


def test_each_retry_has_a_plain_line(downloads: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/x.bin"
    result = run_laden("get", "--retries", "2", "-o", str(downloads), url)
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if "trying again in" in line]
    assert len(lines) == 2, result.stdout
    assert "refused the connection; retry 1 of 2, trying again in" in lines[0]
    assert "retry 2 of 2" in lines[1]


def test_a_name_that_does_not_resolve_is_tried_once_more(
        downloads: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        host = host.decode() if isinstance(host, bytes) else host
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)  # no DNS server is asked: NXDOMAIN, as for a typo
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    began = time.monotonic()
    code = main(["get", "--json", "-o", str(downloads), "http://files.invalid/x.bin"])
    took = time.monotonic() - began
    assert code != 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    retries = [e for e in events if e["event"] == "retrying"]
    assert len(retries) == 1 and "cannot resolve host files.invalid" in retries[0]["reason"]
    assert "retry 1 of 1" in retries[0]["message"]
    assert "cannot resolve host files.invalid: no such name" in err
    assert took < 5, f"a name that does not resolve took {took:.1f} s to fail"
    assert asked
