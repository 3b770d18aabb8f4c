"""Each object store, through the same engine: the bytes a user gets are the bytes stored.

Every test here runs against each emulator (S3 on moto, GCS on fake-gcs-server, Azure Blob on
Azurite, the Hugging Face hub in tests/servers), through `DownloadManager` in this process;
only the kill -9 and the error-message tests run the real `laden get` in a subprocess.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from laden.core.config import Config
from laden.core.errors import RemoteChanged
from laden.core.options import DownloadOptions
from laden.core.states import State
from servers.fixtures import random_bytes

from .conftest import (
    FAST,
    journal_done,
    journal_records,
    laden,
    laden_process,
    manager,
    wait_for,
)
from .stores import Store


def _read_all(source: object, remote: object, options: DownloadOptions) -> bytes:
    reader = source.open_range(remote, 0, remote.size, options)  # type: ignore[attr-defined]
    buffer = memoryview(bytearray(remote.size))  # type: ignore[attr-defined]
    got = 0
    try:
        while got < len(buffer):
            n = reader.readinto(buffer[got:])
            if not n:
                break
            got += n
    finally:
        reader.close()
    return bytes(buffer[:got])


def test_single_object(store: Store, downloads: Path) -> None:
    data = random_bytes(300_000, seed=1)
    store.put("models/one.bin", data)
    with manager() as m:
        info = m.wait(m.add(store.url("models/one.bin"), str(downloads) + "/", **store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest) == downloads / "one.bin"
    assert Path(info.dest).read_bytes() == data
    assert info.source == store.name
    assert any(c.verified for c in info.checksums), info.checksums


def test_large_object_in_parallel_segments(store: Store, downloads: Path, range_log) -> None:
    data = random_bytes(6 * 1024 * 1024, seed=2)
    store.put("big.bin", data)
    log = range_log(store.source_class)
    with manager(FAST.replace(connections=6)) as m:
        info = m.wait(m.add(store.url("big.bin"), str(downloads), **store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert len(log.starts) >= 4, f"expected several ranged reads, got {log.ranges}"
    assert all(end is not None for _, end in log.ranges)


def test_folder_with_glob_keeps_the_layout(store: Store, downloads: Path) -> None:
    files = {
        "data/a.csv": b"a", "data/b.txt": b"b", "data/sub/c.csv": b"c",
        "data/sub/deep/d.csv": b"d", "data/sub/e.txt": b"e", "other/f.csv": b"f",
    }
    for key, data in files.items():
        store.put(key, data)
    with manager() as m:
        by_address = m.add_all(store.url("data/**/*.csv"), str(downloads / "g"), **store.options())
        by_option = m.add_all(store.url("data/sub/"), str(downloads / "o"),
                              **store.options(glob="*.txt"))
        infos = [m.wait(i) for i in by_address + by_option]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    found = sorted(str(p.relative_to(downloads)) for p in downloads.rglob("*") if p.is_file())
    assert found == ["g/a.csv", "g/sub/c.csv", "g/sub/deep/d.csv", "o/e.txt"]
    assert (downloads / "g/sub/deep/d.csv").read_bytes() == b"d"


def test_kill_9_mid_download_then_rerun_gives_identical_bytes(
    store: Store, downloads: Path, laden_dirs: dict[str, Path]
) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=3)
    store.put("k.bin", data)
    command = ["get", "-q", "-o", str(downloads), store.url("k.bin"), *store.cli_args()]
    process = laden_process(*command, "--limit-rate", "1M")
    try:
        wait_for(lambda: journal_done(laden_dirs["state"]) > 300_000)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    kept = journal_done(laden_dirs["state"])
    assert 0 < kept < len(data)
    done = laden(*command)
    assert done.returncode == 0, done.stderr
    assert (downloads / "k.bin").read_bytes() == data
    assert list(downloads.rglob("*.laden-part")) == []
    [record] = journal_records(laden_dirs["state"])
    assert not any("again" in e["message"] for e in record.errors), "resumed, not restarted"


def test_object_changed_between_sessions_starts_again(store: Store, downloads: Path) -> None:
    old, new = random_bytes(3 * 1024 * 1024, seed=4), random_bytes(3 * 1024 * 1024, seed=5)
    store.put("c.bin", old)
    with manager(FAST.replace(limit_rate=1024 * 1024)) as m:
        download_id = m.add(store.url("c.bin"), str(downloads), **store.options())
        wait_for(lambda: m.get(download_id).done > 300_000)
    store.put("c.bin", new)  # same size, other bytes: only the validator tells
    with manager() as m:
        info = m.wait(m.add(store.url("c.bin"), str(downloads), **store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == new
    assert any("changed" in e.message for e in info.errors), info.errors


def test_reads_are_pinned_to_the_probed_version(store: Store) -> None:
    old, new = random_bytes(200_000, seed=6), random_bytes(200_000, seed=7)
    store.put("p.bin", old)
    source = store.source_class(Config())
    options = DownloadOptions(**store.options())
    try:
        remote = source.probe(store.url("p.bin"), options)
        assert _read_all(source, remote, options) == old
        store.put("p.bin", new)
        if store.changes_in_place:
            with pytest.raises(RemoteChanged):
                _read_all(source, remote, options)
        else:  # a commit stays readable: the probed one still gives the old bytes
            assert _read_all(source, remote, options) == old
        assert source.probe(store.url("p.bin"), options).version != remote.version
    finally:
        source.close()


def test_corrupted_bytes_fail_the_published_checksum(
    store: Store, downloads: Path, corrupt_reads
) -> None:
    data = random_bytes(500_000, seed=8)
    store.put("bad.bin", data)
    corrupt_reads(store.source_class)
    with manager() as m:
        info = m.wait(m.add(store.url("bad.bin"), str(downloads), **store.options()))
    assert info.state is State.FAILED
    assert "checksum mismatch" in info.message
    assert not (downloads / "bad.bin").exists()


def test_missing_object_and_container_are_one_line_each(store: Store, downloads: Path) -> None:
    store.put("here.bin", b"here")
    missing = store.url("not-here.bin")
    result = laden("get", "-q", "-o", str(downloads), missing, store.missing_container_url(),
                   *store.cli_args())
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith("laden: ") for line in lines)
    assert any(word in lines[0] for word in ("no such", "no file")), lines[0]
    assert any(word in lines[1] for word in ("no such", "not found")), lines[1]


def test_bad_credentials_are_one_clear_line(store: Store, downloads: Path) -> None:
    store.put("secret.bin", b"secret")
    started = time.monotonic()
    with store.bad_credentials() as options:
        result = laden("get", "-q", "-o", str(downloads), store.url("secret.bin"), *options)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert any(word in lines[0] for word in ("credentials", "token", "refused", "access")), lines
    assert time.monotonic() - started < 20, "a refusal is not worth retrying"
