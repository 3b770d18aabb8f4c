"""Running the same command again: a finished download is kept, not fetched a second time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import run_laden, sha256
from laden.cli import main
from manifest.conftest import write_manifest
from servers.fixtures import random_bytes


def _gets(server: Any, path: str) -> int:
    return sum(1 for r in server.requests if r.method == "GET" and r.path == path)


def test_rerun_of_a_finished_get_keeps_the_file(http_server, downloads: Path) -> None:
    data = random_bytes(300_000, seed=2101)
    url = http_server.add_file("/1m.bin", data)
    first = run_laden("get", "-o", str(downloads), url)
    assert first.returncode == 0, first.stderr
    fetched = _gets(http_server, "/1m.bin")

    again = run_laden("get", "-o", str(downloads), url)
    assert again.returncode == 0, again.stderr
    assert f"already downloaded: {downloads / '1m.bin'}" in again.stdout
    assert "size checked, not hashed again" in again.stdout
    assert sorted(p.name for p in downloads.iterdir()) == ["1m.bin"]  # no 1m.1.bin
    assert _gets(http_server, "/1m.bin") == fetched

    as_json = run_laden("get", "--json", "-o", str(downloads), url)
    (event,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert event["event"] == "alreadydownloaded" and event["dest"] == str(downloads / "1m.bin")
    assert event["checked"] == "size checked, not hashed again; the remote is unchanged"
    heads = [r for r in http_server.requests if r.method == "HEAD" and r.path == "/1m.bin"]
    assert len(heads) == 2  # one question per rerun, never the bytes


def test_a_rerun_after_the_remote_changed_fetches_the_new_version(http_server,
                                                                  downloads: Path) -> None:
    url = http_server.add_file("/v.bin", b"version one" * 1000)
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    http_server.set_content("/v.bin", b"version two, longer" * 1000)
    again = run_laden("get", "-o", str(downloads), url)
    assert again.returncode == 0, again.stderr
    assert "already downloaded" not in again.stdout
    assert sorted(p.name for p in downloads.iterdir()) == ["v.bin"]  # in place, no v.1.bin
    assert (downloads / "v.bin").read_bytes() == b"version two, longer" * 1000


def test_a_rerun_that_cannot_ask_the_remote_keeps_the_file(http_server, downloads: Path) -> None:
    url = http_server.add_file("/gone.bin", b"kept" * 1000)
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    http_server.stop()
    again = run_laden("get", "-o", str(downloads), url)
    assert again.returncode == 0, again.stderr
    assert "already downloaded" in again.stdout and "could not be asked" in again.stdout
    assert (downloads / "gone.bin").read_bytes() == b"kept" * 1000


def test_force_fetches_again_in_place(http_server, downloads: Path) -> None:
    url = http_server.add_file("/f.bin", b"first")
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    http_server.set_content("/f.bin", b"newer")
    forced = run_laden("get", "--force", "-o", str(downloads), url)
    assert forced.returncode == 0, forced.stderr
    assert f"saved {downloads / 'f.bin'}" in forced.stdout
    assert sorted(p.name for p in downloads.iterdir()) == ["f.bin"]
    assert (downloads / "f.bin").read_bytes() == b"newer"


def test_a_changed_or_deleted_file_is_fetched_again(http_server, downloads: Path) -> None:
    data = random_bytes(200_000, seed=2102)
    url = http_server.add_file("/c.bin", data)
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    (downloads / "c.bin").unlink()
    again = run_laden("get", "-o", str(downloads), url)
    assert again.returncode == 0 and "already downloaded" not in again.stdout
    assert sha256(downloads / "c.bin") == sha256(data)

    # Same size, other bytes: only hashing tells, so --verify hashes instead of trusting it.
    (downloads / "c.bin").write_bytes(b"x" * len(data))
    checksum = f"sha256:{sha256(data)}"
    checked = run_laden("get", "--checksum", checksum, "-o", str(downloads), url)
    assert checked.returncode == 0, checked.stderr
    assert "already downloaded" not in checked.stdout
    assert sha256(downloads / "c.1.bin") == sha256(data)  # the changed file is left alone
    kept = run_laden("get", "--verify", "-o", str(downloads), url)
    assert "already downloaded" in kept.stdout and "sha256 checked now" in kept.stdout


def test_manifest_rerun_says_what_was_checked(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = random_bytes(100_000, seed=2103)
    url = http_server.add_file("/m.bin", data)
    root = tmp_path / "root"
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "name": "model", "url": url, "target_path": "m.bin",
         "checksum": f"sha256:{sha256(data)}"}]})
    assert main(["run", str(path)]) == 0
    assert _row(capsys.readouterr().out)["VERIFIED"] == "yes"

    (root / "m.bin").write_bytes(b"\0" * len(data))  # corrupted on disk, same size
    assert main(["run", str(path)]) == 0
    row = _row(capsys.readouterr().out)
    assert row["VERIFIED"] == "size only" and "done before" in row["FILES"]
    assert (root / "m.bin").read_bytes() == b"\0" * len(data)  # not hashed, so not noticed

    assert main(["run", str(path), "--verify"]) == 0  # hashed: fetched again, and right
    assert _row(capsys.readouterr().out)["VERIFIED"] == "yes"
    assert (root / "m.bin").read_bytes() == data
    assert main(["run", str(path), "--verify", "--json"]) == 0
    (item,) = [e for e in map(json.loads, capsys.readouterr().out.splitlines())
               if e["event"] == "item"]
    assert item["earlier"] == 1 and item["verified"] == "yes"


def _row(out: str) -> dict[str, str]:
    """The summary table's one item row, by column (the columns are split on 2+ spaces)."""
    import re

    lines = [line for line in out.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if line.startswith("ITEM"))
    names = re.split(r"\s{2,}", lines[header].strip())
    return dict(zip(names, re.split(r"\s{2,}", lines[header + 1].strip()), strict=False))


@pytest.mark.parametrize(("faults", "said"), [
    ({"ignore_range": True}, "this server cannot resume it (it does not answer byte ranges)"),
    ({"no_etag": True}, "give --checksum ALGO:HEX to keep the bytes"),
])
def test_ctrl_c_says_when_the_rerun_starts_from_zero(
    faults: dict[str, bool], said: str, http_server: Any, downloads: Path,
    laden_dirs: dict[str, Path],
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from engine.helpers import part_files
    from servers.faults import Faults
    from servers.fixtures import wait_for

    data = random_bytes(1_500_000, seed=2104)
    url = http_server.add_file("/r.bin", data,
                               faults=Faults(rate_per_connection=300_000, **faults))
    command = [sys.executable, "-m", "laden", "get", "-c", "1", "-o", str(downloads), url]
    # Ctrl-C as at a terminal, however the suite was started (see test_sessions).
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: any(p.stat().st_size > 0 for p in part_files(downloads)))
    time.sleep(1.0)  # a few hundred kilobytes in
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130, (_out, err)
    assert said in err and "starts again from zero" in err
    assert "run the same command again to resume" not in err

    http_server.set_faults("/r.bin", Faults(**faults))
    again = run_laden(*command[3:])
    assert again.returncode == 0, again.stderr
    assert "already downloaded will be fetched again" in again.stderr and said in again.stderr
    assert sha256(downloads / "r.bin") == sha256(data)


def test_verify_with_a_wrong_checksum_reports_and_changes_nothing(
    http_server, downloads: Path
) -> None:
    data = random_bytes(50_000, seed=2105)
    url = http_server.add_file("/v.bin", data)
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    wrong = run_laden("verify", "1", "--checksum", "sha256:" + "0" * 64)
    assert wrong.returncode == 1 and "mismatch" in wrong.stdout
    assert "its state is unchanged (done); --record marks it failed" in wrong.stdout
    assert json.loads(run_laden("list", "--json").stdout)["state"] == "done"
    assert run_laden("resume", "--all").stdout.strip() == "nothing to resume"

    recorded = run_laden("verify", "1", "--checksum", "sha256:" + "0" * 64, "--record")
    assert recorded.returncode == 1
    assert json.loads(run_laden("list", "--json").stdout)["state"] == "failed"
    right = run_laden("verify", "1", "--checksum", f"sha256:{sha256(data)}", "--record")
    assert right.returncode == 0, right.stdout
    assert json.loads(run_laden("list", "--json").stdout)["state"] == "done"


def test_messages_say_what_happened(http_server, downloads: Path) -> None:
    url = http_server.add_file("/p.bin", b"p" * 1000)
    assert run_laden("get", "-q", "-o", str(downloads), url).returncode == 0
    paused = run_laden("pause", "1")
    assert paused.stdout.strip() == "[1] p.bin: not paused: it is already done"

    (downloads / "p.bin").unlink()
    gone = run_laden("verify", "1")
    assert gone.returncode == 1
    assert gone.stdout.strip() == (f"[1] FAILED: {downloads / 'p.bin'}: the file is gone: "
                                   "deleted or moved since it was downloaded")

    (downloads / "p.bin").write_bytes(b"mine")
    skipped = run_laden("get", "--force", "--conflict", "skip", "-o", str(downloads), url)
    assert skipped.returncode == 0, skipped.stderr
    assert f"skipped {downloads / 'p.bin'}: a file is already there" in skipped.stdout
    assert "saved" not in skipped.stdout


@pytest.mark.parametrize(("argv", "said"), [
    (["lsit"], "'lsit' is neither a command nor an address; did you mean laden list?"),
    (["upload", "x"], "'upload' is neither a command nor an address; the commands are get, "),
    (["verfy", "1"], "did you mean laden verify?"),
])
def test_a_mistyped_command_is_a_usage_error(argv: list[str], said: str) -> None:
    result = run_laden(*argv, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stdout == ""
    assert said in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("argv", [["http://127.0.0.1:9/x.bin"], []])
def test_the_app_never_starts_without_a_terminal(argv: list[str]) -> None:
    result = run_laden(*argv, stdin=subprocess.DEVNULL, timeout=20)
    assert result.returncode == 2 and result.stdout == ""  # no escape codes in the pipe
    assert "the app needs a terminal" in result.stderr and "laden get" in result.stderr
