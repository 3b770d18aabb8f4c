"""Direct writes (O_DIRECT) for large downloads: the same bytes as a buffered write, whatever
the offsets, faults, pauses and file systems."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laden.core.states import State
from laden.engine import direct
from laden.engine.partfile import PartialFile
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="Linux only")

# Odd sizes, so neither segment boundaries nor the file's end fall on a block.
SIZE = 12 * 1024 * 1024 + 12_345
ON = FAST.replace(direct_io="on", connections=4, min_segment_size=1_000_003)


def _is_direct(fd: int) -> bool:
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
    except OSError:
        return False


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes written through a direct descriptor, write by write."""
    sizes: list[int] = []
    real = os.pwrite

    def counting(fd: int, data, offset: int) -> int:  # type: ignore[no-untyped-def]
        written = real(fd, data, offset)
        if _is_direct(fd):
            sizes.append(written)
        return written

    monkeypatch.setattr(os, "pwrite", counting)
    return sizes


@pytest.fixture
def direct_ok(downloads: Path) -> None:
    probe = downloads / ".probe"
    probe.touch()
    fd = direct.open_direct(str(probe))
    probe.unlink()
    if fd is None:
        pytest.skip("this file system refuses O_DIRECT")
    os.close(fd)


@pytest.mark.parametrize("faults", [
    Faults(),
    Faults(drop_after=2_000_001, drop_every_other=True),
    Faults(stall_after=1_500_000, stall_seconds=30, stall_times=1),
    Faults(rate_per_connection=3_000_000),
], ids=["clean", "drops", "stall", "capped"])
def test_direct_download_is_exact(http_server, downloads: Path, direct_ok, direct_writes,
                                  faults: Faults) -> None:
    data = random_bytes(SIZE, seed=71)
    url = http_server.add_file("/d.bin", data, faults=faults)
    with manager(ON.replace(stall_timeout=1.0)) as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert sum(direct_writes) > SIZE // 2, "most bytes should have gone direct"
    assert all(n % direct.ALIGN == 0 for n in direct_writes)


def test_pause_and_resume_at_unaligned_offsets(http_server, downloads: Path, direct_ok,
                                               direct_writes) -> None:
    data = random_bytes(SIZE, seed=72)
    url = http_server.add_file("/p.bin", data, faults=Faults(rate_per_connection=1_500_000))
    with manager(ON) as m:
        download_id = m.add(url, str(downloads))
        deadline = time.monotonic() + 20
        while m.get(download_id).done < 2_000_000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        m.pause(download_id)
        assert m.wait(download_id).state is State.PAUSED
        http_server.set_faults("/p.bin", Faults())
        m.resume(download_id)
        info = m.wait(download_id)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert direct_writes


def test_refused_direct_writes_go_on_buffered(http_server, downloads: Path, direct_ok,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system that accepts O_DIRECT at open but wants another alignment (EINVAL)."""
    real = os.pwrite
    refused: list[int] = []

    def picky(fd: int, data, offset: int) -> int:  # type: ignore[no-untyped-def]
        if _is_direct(fd):
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", picky)
    data = random_bytes(SIZE, seed=73)
    url = http_server.add_file("/r.bin", data)
    with manager(ON) as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert refused, "the direct path should have been tried"


def test_off_and_small_files_stay_buffered(http_server, downloads: Path, direct_writes) -> None:
    data = random_bytes(SIZE, seed=74)
    url = http_server.add_file("/o.bin", data)
    for config in (ON.replace(direct_io="off"), ON.replace(direct_io="auto")):
        with manager(config) as m:
            info = m.wait(m.add(url, str(downloads), conflict="overwrite"))
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
    assert direct_writes == []  # auto: 12 MiB is below AUTO_MIN_SIZE


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.tuples(st.integers(0, 3 << 20), st.integers(1, 600_000)),
                       min_size=1, max_size=12))
def test_placed_writes_land_where_buffered_ones_would(tmp_path_factory, pieces) -> None:
    folder = tmp_path_factory.mktemp("direct")
    size = 4 << 20
    part = PartialFile(str(folder / "f.laden-part"))
    part.open(None, direct_io=True)
    part.preallocate(size)
    expected = bytearray(size)
    buffer = direct.aligned_buffer(1 << 20)
    try:
        for number, (offset, length) in enumerate(pieces):
            length = min(length, size - offset)
            region = direct.slot(buffer, offset, length)
            region[:] = bytes([number % 251 + 1]) * length
            part.write(region, offset, placed=True)
            expected[offset : offset + length] = region
    finally:
        part.close()
    assert (folder / "f.laden-part").read_bytes() == bytes(expected)


@pytest.mark.parametrize(("offset", "count", "expected"), [
    (0, 1 << 20, (0, 1 << 20)),
    (100, 1 << 20, (3996, (1 << 20) - 4096)),
    (4096, 70_000, (0, 69_632)),
    (5, 60_000, (60_000, 0)),  # the aligned middle is too short: all buffered
])
def test_split(offset: int, count: int, expected: tuple[int, int]) -> None:
    assert direct.split(offset, count) == expected


def test_file_system_type_reads_the_innermost_mount(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "30 22 0:40 / /mnt/nas rw - nfs4 nas:/export rw\n"
        "31 22 0:41 / /mnt/nas\\040two rw - cifs //nas/two rw\n"
    )
    monkeypatch.setattr(direct, "MOUNTINFO", str(mountinfo))
    assert direct.file_system_type("/home/me") == "ext4"
    assert direct.file_system_type("/mnt/nas/films") == "nfs4"
    assert direct.file_system_type("/mnt/nas two") == "cifs"
    assert direct.file_system_type("/mnt/nasty") == "ext4"
    assert direct.wanted("auto", "/home/me", 1 << 30)
    assert not direct.wanted("auto", "/mnt/nas/films", 1 << 30)
    assert not direct.wanted("auto", "/home/me", 1 << 20)
    assert direct.wanted("on", "/mnt/nas/films", 1 << 20)
    assert not direct.wanted("off", "/home/me", 1 << 30)
    assert not direct.wanted("auto", "/home/me", None)


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_checksum_hashed_along_reads_back_direct(http_server, downloads: Path, direct_ok,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 right: bool) -> None:
    data = random_bytes(SIZE, seed=75)
    url = http_server.add_file("/c.bin", data)
    digest = sha256(data) if right else sha256(b"something else")
    from laden.engine import hashing

    opened: list[bool] = []
    real_open = direct.open_direct

    def noting(path: str, *, read: bool = False) -> int | None:
        fd = real_open(path, read=read)
        opened.append(read and fd is not None)
        return fd

    monkeypatch.setattr(hashing.direct, "open_direct", noting)

    def no_second_pass(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the trailing hasher should have hashed every byte")

    monkeypatch.setattr("laden.engine.downloading.finishing.hash_file", no_second_pass)
    with manager(ON) as m:
        info = m.wait(m.add(url, str(downloads), checksum=f"sha256:{digest}"))
    assert any(opened), "the trailing hasher should read direct"
    if right:
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
    else:
        assert info.state is State.FAILED
        assert "sha256" in info.message.lower() or "checksum" in info.message.lower()
