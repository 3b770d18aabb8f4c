"""FTP through `laden get`: what a user sees for failures, and resuming after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.helpers import journalled_bytes, part_files, sha256
from laden.cli import main
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer

from .conftest import wait_for


def test_wrong_password_is_one_clear_line_without_delay(
    ftp_server: FTPTestServer, downloads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ftp_server.write_file("auth/f.bin", b"f")
    url = f"ftp://{ftp_server.user}:not-the-pw-1234@127.0.0.1:{ftp_server.port}/auth/f.bin"
    began = time.monotonic()
    code = main(["get", "-q", "-o", str(downloads), url])
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 1
    assert took < 2.0  # a refused login is not retried
    assert err.count("\n") == 1, err
    assert f"FTP login to 127.0.0.1:{ftp_server.port} as 'laden' failed: 530" in err
    assert "not-the-pw-1234" not in err


def test_missing_file_is_one_clear_line(ftp_server: FTPTestServer, downloads: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["get", "-q", "-o", str(downloads), f"{ftp_server.url}/nowhere/none.bin"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1, err
    assert "no such file 'nowhere/none.bin'" in err
    assert ftp_server.password not in err


def test_folder_with_glob_from_the_command_line(ftp_server: FTPTestServer, downloads: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.csv", "b.csv", "c.json", "nested/d.csv"):
        ftp_server.write_file(f"cli/{name}", name.encode())
    code = main(["get", "-q", "--glob", "*.csv", "-o", str(downloads), f"{ftp_server.url}/cli/"])
    assert code == 0, capsys.readouterr().err
    found = sorted(str(p.relative_to(downloads)) for p in downloads.rglob("*") if p.is_file())
    assert found == ["a.csv", "b.csv", "nested/d.csv"]
    assert (downloads / "nested" / "d.csv").read_bytes() == b"nested/d.csv"


def test_folder_with_include_and_exclude_from_the_command_line(
    ftp_server: FTPTestServer, downloads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same selection as S3 and Azure make of the same flags (issue 21, item 2).
    for name in ("config.json", "model.safetensors", "ckpt/optimizer.safetensors",
                 "ckpt/step.safetensors", "README.md"):
        # A .safetensors is checked before its final rename: the smallest whole one.
        content = b"\x02\0\0\0\0\0\0\0{}" if name.endswith(".safetensors") else name.encode()
        ftp_server.write_file(f"filters/{name}", content)
    code = main(["get", "-q", "--include", "*.json", "--include", "*.safetensors",
                 "--exclude", "*/optimizer*", "-o", str(downloads),
                 f"{ftp_server.url}/filters/"])
    assert code == 0, capsys.readouterr().err
    found = sorted(str(p.relative_to(downloads)) for p in downloads.rglob("*") if p.is_file())
    assert found == ["ckpt/step.safetensors", "config.json", "model.safetensors"]


def test_an_ftp_folder_where_nothing_matches_says_so(
    ftp_server: FTPTestServer, downloads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ftp_server.write_file("filters-none/a.txt", b"a")
    code = main(["get", "-q", "--include", "*.bin", "-o", str(downloads),
                 f"{ftp_server.url}/filters-none/"])
    err = capsys.readouterr().err
    assert code != 0
    assert "nothing to download" in err and ftp_server.password not in err
    assert not any(downloads.rglob("*.txt"))


def test_kill_9_then_rerun_resumes_to_identical_bytes(
    slow_ftp_server: FTPTestServer, downloads: Path, laden_dirs: dict[str, Path]
) -> None:
    data = random_bytes(1_600_000, seed=20)
    slow_ftp_server.write_file("kill/k.bin", data)
    url = f"{slow_ftp_server.url}/kill/k.bin"
    command = [sys.executable, "-m", "laden", "get", "-c", "2", "-o", str(downloads), url]
    process = subprocess.Popen([*command, "-q"], env=os.environ.copy())
    try:
        wait_for(lambda: journalled_bytes(laden_dirs["state"]) > 300_000)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert part_files(downloads)
    before = journalled_bytes(laden_dirs["state"])
    again = subprocess.run([*command, "--json"], env=os.environ.copy(), capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["done"] >= before > 0  # it went on from the bytes on disk
    assert sha256(downloads / "k.bin") == sha256(data)
    assert part_files(downloads) == []
    assert slow_ftp_server.password not in again.stdout + again.stderr


def test_resuming_without_the_password_says_it_was_never_stored(
    slow_ftp_server: FTPTestServer, downloads: Path, laden_dirs: dict[str, Path]
) -> None:
    data = random_bytes(1_600_000, seed=21)
    slow_ftp_server.write_file("private/p.bin", data)
    url = f"{slow_ftp_server.url}/private/p.bin"  # ftp://laden:PASSWORD@127.0.0.1:PORT/...
    process = subprocess.Popen([sys.executable, "-m", "laden", "get", "-q", "-c", "2", "-o",
                                str(downloads), url], env=os.environ.copy())
    try:
        wait_for(lambda: journalled_bytes(laden_dirs["state"]) > 300_000)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    refused = subprocess.run([sys.executable, "-m", "laden", "resume", "--all", "-q"],
                             env=os.environ.copy(), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1, refused.stderr
    assert "as 'laden' failed: 530" in refused.stderr
    assert "laden never stores credentials, not even for a resume" in refused.stderr
    assert "-u USER:PASSWORD" in refused.stderr
    resumed = subprocess.run(
        [sys.executable, "-m", "laden", "resume", "--all", "-q", "-u",
         f"{slow_ftp_server.user}:{slow_ftp_server.password}"],
        env=os.environ.copy(), capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert sha256(downloads / "p.bin") == sha256(data)
    assert slow_ftp_server.password not in refused.stderr + resumed.stderr
