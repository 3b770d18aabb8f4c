"""Every bad input gets one clear line and a non-zero exit code, never a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.helpers import run_laden

CASES = [
    # (arguments, exit code, words the message must contain)
    (["get", "not-a-url"], 2, "malformed address"),
    (["get", "gopher://example.com/x"], 2, "unsupported address scheme 'gopher'"),
    (["get", "http://"], 2, "no host"),
    (["get", "http://exa mple.com/x"], 2, "spaces"),
    (["get"], 2, "no URL given"),
    (["get", "-c", "-1", "http://127.0.0.1:9/x"], 2, "connections must be between 1 and 32"),
    (["get", "-c", "0", "http://127.0.0.1:9/x"], 2, "connections must be between 1 and 32"),
    (["get", "-c", "33", "http://127.0.0.1:9/x"], 2, "connections must be between 1 and 32"),
    (["get", "-c", "many", "http://127.0.0.1:9/x"], 2, "invalid int value"),
    (["get", "--checksum", "sha256:xyz", "http://127.0.0.1:9/x"], 2, "64 hex digits"),
    (["get", "--checksum", "nonsense", "http://127.0.0.1:9/x"], 2, "sha256:HEX"),
    (["get", "--checksum", "whirlpool:00", "http://127.0.0.1:9/x"], 2, "unknown checksum"),
    (["get", "--limit-rate", "fast", "http://127.0.0.1:9/x"], 2, "rate limit"),
    (["get", "--limit-rate=-5M", "http://127.0.0.1:9/x"], 2, "rate limit"),
    (["get", "-H", "NoColon", "http://127.0.0.1:9/x"], 2, "Name: value"),
    (["get", "--conflict", "merge", "http://127.0.0.1:9/x"], 2, "invalid choice"),
    (["get", "--proxy", "socks5://u:pw@127.0.0.1:1080", "http://127.0.0.1:9/x"], 2,
     "cannot use a SOCKS proxy ('socks5://127.0.0.1:1080'): give an HTTP proxy"),
    (["get", "--ca-bundle", "/nonexistent/ca.pem", "http://127.0.0.1:9/x"], 2, "does not exist"),
    (["get", "-i", "/nonexistent/list.txt"], 2, "cannot read"),
    (["get", "--name", "a", "http://127.0.0.1:9/x", "http://127.0.0.1:9/y"], 2, "one URL"),
    (["get", "--retries", "-3", "http://127.0.0.1:9/x"], 2, "retries must be between"),
    (["get", "--max-active", "0", "http://127.0.0.1:9/x"], 2, "max_active must be between"),
    (["get", "--frobnicate", "http://127.0.0.1:9/x"], 2, "unrecognized arguments"),
    (["pause", "abc"], 2, "not a download id"),
    (["pause", "99"], 2, "no download with id 99"),
    (["remove", "42"], 2, "no download with id 42"),
    (["verify", "/nonexistent/file"], 2, "neither a download id"),
    (["resume"], 2, "say which downloads"),
    (["--log-level", "loud", "get", "http://127.0.0.1:9/x"], 2, "--log-level must be one of"),
    (["get", "--log-level", "loud", "http://127.0.0.1:9/x"], 2, "--log-level must be one of"),
    (["--frobnicate"], 2, "unrecognized arguments"),
    (["get", "http://☃..example/x"], 2, "empty part between dots"),
    (["get", "http://" + "ä" * 64 + ".example/x"], 2, "longer than 63 characters"),
    (["get", "http://[::1]]/x"], 2, "[address]:port"),
    (["get", "--limit-rate", "1" + "0" * 400, "http://127.0.0.1:9/x"], 2, "too large"),
]


@pytest.mark.parametrize(("args", "code", "words"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(args: list[str], code: int, words: str, downloads: Path) -> None:
    result = run_laden(*args, timeout=30, cwd=downloads)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert words in lines[0], lines[0]


@pytest.mark.parametrize("address", ["http://user:pa55word@[::1/x",
                                     "http://user:pa55word@127.0.0.1:70000/x",
                                     "http://user:pa55word@[::1]]/x",
                                     "user:pa55word@example.com/x"])
def test_malformed_address_never_prints_its_password(address: str, downloads: Path) -> None:
    result = run_laden("get", address, timeout=30, cwd=downloads)
    assert result.returncode == 2, result.stderr
    assert "malformed address" in result.stderr and "Traceback" not in result.stderr
    assert "pa55word" not in result.stdout + result.stderr


def test_unwritable_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = "/proc/laden-cannot-write-here"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = str(locked / "sub")
    result = run_laden("get", "-o", target, "http://127.0.0.1:9/x", timeout=30)
    assert result.returncode == 2
    assert "cannot use" in result.stderr or "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_settings_file_names_file_and_line(laden_dirs) -> None:
    config = laden_dirs["config"] / "config.toml"
    config.write_text('connections = 8\nmax_active = "three"\n')
    result = run_laden("get", "http://127.0.0.1:9/x", timeout=30)
    assert result.returncode == 2
    assert str(config) in result.stderr and "line 2" in result.stderr
    config.write_text("connections = = 8\n")
    result = run_laden("list", timeout=30)
    result = run_laden("settings", timeout=30)
    assert result.returncode == 2 and "line 1" in result.stderr
    assert config.read_text() == "connections = = 8\n", "a broken file is never rewritten"


def test_an_unknown_setting_is_refused_with_the_closest_name(laden_dirs) -> None:
    config = laden_dirs["config"] / "config.toml"
    config.write_text("conectionz = 4\n")
    for command in (["settings"], ["get", "http://127.0.0.1:9/x"]):
        result = run_laden(*command, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "conectionz: unknown setting, did you mean connections?" in result.stderr
        assert f"{config}, line 1" in result.stderr


def test_second_instance_names_the_first(http_server, downloads: Path) -> None:
    import subprocess
    import sys
    import time

    from servers.http_server import Faults

    url = http_server.add_file("/slow.bin", b"s" * 2_000_000,
                               faults=Faults(rate_per_connection=200_000))
    first = subprocess.Popen([sys.executable, "-m", "laden", "get", "-q", "-o", str(downloads),
                              url], env=os.environ.copy())
    try:
        time.sleep(1.0)
        second = run_laden("get", "--no-wait", "-o", str(downloads), url, timeout=30)
        assert second.returncode == 3
        assert "another laden is using" in second.stderr and str(first.pid) in second.stderr
        listing = run_laden("list", timeout=30)
        assert listing.returncode == 0 and "slow.bin" in listing.stdout
    finally:
        first.kill()
        first.wait()
