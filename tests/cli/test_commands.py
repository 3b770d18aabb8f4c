"""The headless commands as a script would use them."""

from __future__ import annotations

import json
from pathlib import Path

from engine.helpers import run_laden, sha256
from servers.fixtures import random_bytes


def test_get_list_verify_remove(http_server, downloads: Path) -> None:
    data = random_bytes(700_000, seed=50)
    url = http_server.add_file("/tool.tar.gz", data)
    got = run_laden("get", "-o", str(downloads), "--checksum", f"sha256:{sha256(data)}", url)
    assert got.returncode == 0, got.stderr
    assert f"saved {downloads / 'tool.tar.gz'}" in got.stdout  # plain output: not a terminal
    listing = json.loads(run_laden("list", "--json").stdout.splitlines()[0])
    assert listing["state"] == "done" and listing["size"] == len(data)
    by_path = run_laden("verify", str(downloads / "tool.tar.gz"))
    assert by_path.returncode == 0 and "sha256 matches" in by_path.stdout
    (downloads / "tool.tar.gz").write_bytes(data[:-1] + b"!")
    broken = run_laden("verify", str(listing["id"]))
    assert broken.returncode == 1 and "mismatch" in broken.stdout
    removed = run_laden("remove", str(listing["id"]), "--delete-file")
    assert removed.returncode == 0
    assert not (downloads / "tool.tar.gz").exists()
    assert run_laden("list").stdout.strip() == "no downloads yet"


def test_pause_then_resume_all(http_server, downloads: Path) -> None:
    from servers.http_server import Faults

    data = random_bytes(1_000_000, seed=51)
    url = http_server.add_file("/later.bin", data, faults=Faults(status_sequence=[(404, {})]))
    first = run_laden("get", "-q", "-o", str(downloads), url)
    assert first.returncode == 1 and "404" in first.stderr
    resumed = run_laden("resume", "--all")
    assert resumed.returncode == 0, resumed.stderr
    assert sha256(downloads / "later.bin") == sha256(data)


def test_input_file_with_aria2_options(http_server, downloads: Path, tmp_path: Path) -> None:
    a = http_server.add_file("/a.txt", b"alpha")
    b = http_server.add_file("/b.txt", b"beta")
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# my list\n{a}\n{b}\n  out=renamed.txt\n  dir={downloads}/sub\n"
                       f"  checksum=sha-256={sha256(b'beta')}\n")
    result = run_laden("get", "-i", str(listing), "-o", str(downloads))
    assert result.returncode == 0, result.stderr
    assert (downloads / "a.txt").read_bytes() == b"alpha"
    assert (downloads / "sub" / "renamed.txt").read_bytes() == b"beta"


def test_json_events(http_server, downloads: Path) -> None:
    url = http_server.add_file("/j.bin", b"j" * 10_000)
    result = run_laden("get", "--json", "-o", str(downloads), url)
    assert result.returncode == 0
    kinds = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert kinds[0] == "added" and "completed" in kinds


def test_help_explains_every_command() -> None:
    top = run_laden("--help")
    assert top.returncode == 0
    for command in ("get", "list", "resume", "pause", "remove", "verify"):
        assert command in top.stdout
        sub = run_laden(command, "--help")
        assert sub.returncode == 0 and "usage: laden " + command in sub.stdout


def test_explicit_connections_beat_the_per_host_default(http_server, downloads: Path) -> None:
    from servers.fixtures import random_bytes
    from servers.http_server import Faults

    data = random_bytes(24 * 1024 * 1024, seed=52)
    url = http_server.add_file("/many.bin", data, faults=Faults(rate_per_connection=2_000_000))
    result = run_laden("get", "-q", "-c", "24", "-o", str(downloads), url)
    assert result.returncode == 0, result.stderr
    assert sha256(downloads / "many.bin") == sha256(data)
    assert http_server.max_concurrent["/many.bin"] > 16
