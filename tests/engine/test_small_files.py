"""A file that comes whole with the probe is written into a file with no name and linked to its
final name once whole: no partial file, none recorded, nothing left by a stop before the end."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from laden.core.states import State
from laden.engine import unnamed
from servers.fixtures import random_bytes

from . import model_files as mf
from .helpers import manager, part_files


def test_a_small_file_is_named_only_once_whole(http_server, downloads: Path,
                                               laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(60_000, seed=5)  # within the probe (FAST: 64 KiB)
    url = http_server.add_file("/small.bin", data)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/"))
    assert info.state is State.DONE, info.message
    final = downloads / "small.bin"
    assert final.read_bytes() == data
    assert stat.S_IMODE(final.stat().st_mode) == 0o644 & ~_umask()
    assert sorted(p.name for p in downloads.iterdir()) == ["small.bin"]  # no link check left
    [record] = journal_records(laden_dirs["state"])
    assert "part" not in record["extra"], "no partial file was made, so none is recorded"
    assert len(http_server.ranged_requests("/small.bin")) == 1  # the probe brought it all


def test_a_taken_name_gets_the_next_free_one(http_server, downloads: Path) -> None:
    url = http_server.add_file("/taken.txt", b"new bytes")
    with manager() as m:
        first = m.add(url, str(downloads) + "/")
        m.wait(first)
        second = m.wait(m.add(url, str(downloads) + "/", again=True))
    assert second.state is State.DONE and second.dest == str(downloads / "taken.1.txt")
    assert (downloads / "taken.txt").read_bytes() == (downloads / "taken.1.txt").read_bytes()


def test_under_overwrite_a_free_name_takes_the_unnamed_file(
        http_server, downloads: Path, laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(40_000, seed=11)
    url = http_server.add_file("/fresh.bin", data)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/", conflict="overwrite"))
    assert info.state is State.DONE, info.message
    assert (downloads / "fresh.bin").read_bytes() == data
    [record] = journal_records(laden_dirs["state"])
    assert "part" not in record["extra"], "no partial file was made, so none is recorded"


def test_under_overwrite_a_name_taken_before_or_meanwhile_is_replaced(
        http_server, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random_bytes(30_000, seed=12)
    url = http_server.add_file("/replaced.bin", data)
    (downloads / "replaced.bin").write_bytes(b"an older file")
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/", conflict="overwrite"))
    assert info.state is State.DONE, info.message
    assert (downloads / "replaced.bin").read_bytes() == data
    # Another program takes the name between the download's start and its link: the bytes
    # go into a named partial file, whose rename replaces what it wrote.
    device = os.stat(downloads).st_dev
    link = unnamed._ways_on(device)[0]

    taken: list[str] = []

    def taken_first(fd: int, dest: str) -> None:
        Path(dest).write_bytes(b"written meanwhile")
        taken.append(dest)
        link(fd, dest)

    monkeypatch.setattr(unnamed, "_ways", {device: [taken_first]})
    url = http_server.add_file("/meanwhile.bin", data[:20_000])
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/", conflict="overwrite"))
    assert info.state is State.DONE, info.message
    assert taken == [str(downloads / "meanwhile.bin")]
    assert (downloads / "meanwhile.bin").read_bytes() == data[:20_000]
    assert part_files(downloads) == []


def test_where_no_unnamed_file_can_be_made_a_partial_file_is(
        http_server, downloads: Path, laden_dirs: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a file system without O_TMPFILE, or a kernel that lets no one link one.
    monkeypatch.setattr(unnamed, "_ways", {os.stat(downloads).st_dev: []})
    data = random_bytes(50_000, seed=6)
    url = http_server.add_file("/plain.bin", data)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/"))
    assert info.state is State.DONE, info.message
    assert (downloads / "plain.bin").read_bytes() == data
    assert part_files(downloads) == []
    [record] = journal_records(laden_dirs["state"])
    assert record["extra"].get("part"), "the partial file it wrote was recorded as its own"


def test_a_way_of_linking_that_fails_is_dropped_and_the_bytes_named_instead(
        http_server, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a sandbox that answers linkat with EXDEV: learnt on the first file.
    def refused(fd: int, dest: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", dest)

    device = os.stat(downloads).st_dev
    monkeypatch.setattr(unnamed, "_ways", {device: [refused]})
    data = random_bytes(40_000, seed=7)
    url = http_server.add_file("/again.bin", data)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/"))
        second = m.wait(m.add(http_server.add_file("/next.bin", data), str(downloads) + "/"))
    assert info.state is State.DONE and second.state is State.DONE, info.message
    assert (downloads / "again.bin").read_bytes() == data == (downloads / "next.bin").read_bytes()
    assert unnamed._ways[device] == [] and part_files(downloads) == []
    # The first file's bytes went into a partial file from memory; the next took one at once.
    assert len(http_server.ranged_requests("/again.bin")) == 1
    assert len(http_server.ranged_requests("/next.bin")) == 1


def test_a_small_file_that_fails_its_check_keeps_its_bytes_as_a_partial_file(
        http_server, downloads: Path, laden_dirs: dict[str, Path]) -> None:
    cut = mf.safetensors({"w": ("F32", [64, 64], bytes(16_384))})[:10_000]
    url = http_server.add_file("/model.safetensors", cut)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads) + "/"))
    assert info.state is State.FAILED and "has 10,000 bytes" in info.message
    assert not (downloads / "model.safetensors").exists()
    [part] = part_files(downloads)
    assert part.read_bytes() == cut
    [record] = journal_records(laden_dirs["state"])
    assert record["extra"]["part"] == [part.stat().st_dev, part.stat().st_ino]


def journal_records(state: Path) -> list[dict]:
    db = sqlite3.connect(f"file:{state / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        return [json.loads(data) for (data,) in db.execute("SELECT data FROM downloads")]
    finally:
        db.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_netrc_is_read_again_when_it_changes(http_server, downloads: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsed once per version of the file, not once per request; an edit is seen at once.
    import base64

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine 127.0.0.1 login ann password first\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    url = http_server.add_file("/private.txt", b"secret bytes")
    http_server.require_auth("/private.txt", basic("ann", "first"))
    with manager() as m:
        assert m.wait(m.add(url, str(downloads / "a") + "/")).state is State.DONE
        http_server.require_auth("/private.txt", basic("ann", "second-longer"))
        netrc_file.write_text("machine 127.0.0.1 login ann password second-longer\n")
        info = m.wait(m.add(url, str(downloads / "b") + "/"))
    assert info.state is State.DONE, info.message
    assert (downloads / "b" / "private.txt").read_bytes() == b"secret bytes"
