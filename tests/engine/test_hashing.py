"""With a checksum to check, pieces go in order and the hash is computed during the download."""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest

from laden.core.states import State
from laden.engine import direct, hashing
from laden.engine.downloading import finishing, preparing
from laden.sources.http import PROBE_RANGE
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

SIZE = 20 * 1024 * 1024


@pytest.fixture
def no_second_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the file was hashed again after the download")

    monkeypatch.setattr(finishing, "hash_file", refuse)
    monkeypatch.setattr(preparing, "IN_ORDER_PIECE", 1 << 20)


@pytest.mark.parametrize("faults", [
    Faults(), Faults(drop_after=700_000, drop_every_other=True),
], ids=["clean", "drops"])
def test_hash_is_ready_when_the_download_ends(http_server, downloads: Path, no_second_pass,
                                              faults) -> None:
    data = random_bytes(SIZE, seed=80)
    url = http_server.add_file("/h.bin", data, faults=faults)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(url, str(downloads), checksum=f"sha256:{sha256(data)}"))
    assert info.state is State.DONE, info.message
    assert [c.verified for c in info.checksums] == [True]
    assert sha256(Path(info.dest)) == sha256(data)
    starts = sorted(int(r.range.split("=")[1].split("-")[0])
                    for r in http_server.ranged_requests("/h.bin") if r.range != PROBE_RANGE)
    assert len(starts) >= SIZE // (1 << 20), "pieces of 1 MiB, front to back"


def test_mismatch_found_during_the_download(http_server, downloads: Path,
                                            no_second_pass) -> None:
    data = random_bytes(SIZE, seed=81)
    url = http_server.add_file("/m.bin", data)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(url, str(downloads), checksum="sha256:" + "ab" * 32))
    assert info.state is State.FAILED and "mismatch" in info.message
    assert not (downloads / "m.bin").exists()


# -- the window, driven directly -------------------------------------------------------------


class _Prefix:
    """Stands in for the segment plan: only how far the file is done without a gap."""

    def __init__(self, done: int = 0) -> None:
        self.done = done

    def done_prefix(self) -> int:
        return self.done


def _chunks(size: int, seed: int) -> list[tuple[int, int]]:
    """(offset, length) pieces of odd lengths covering [0, size)."""
    rng = random.Random(seed)
    out, at = [], 0
    while at < size:
        n = min(size - at, rng.randrange(1, 300_000))
        out.append((at, n))
        at += n
    return out


def _feed(hasher: hashing.TrailingHasher, data: bytes, chunks: list[tuple[int, int]],
          prefix: _Prefix, order: list[int]) -> None:
    """Read chunks in `order` into the places the hasher gives, as connections do, and move the
    prefix on. A chunk the window does not reach is left in the file (already written there)."""
    view = memoryview(data)
    written: set[int] = set()
    ends = dict(chunks)
    for i in order:
        offset, n = chunks[i]
        at, end = offset, offset + n
        while at < end and (place := hasher.place_for(at, end - at)) is not None:
            place[:] = view[at : at + len(place)]  # the ring wraps: maybe in two places
            hasher.keep(at, len(place))
            at += len(place)
        written.add(offset)
        while prefix.done < len(data) and prefix.done in written:
            prefix.done += ends[prefix.done]


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MAX_WAIT", 0.01)


@pytest.mark.parametrize("seed", range(4))
def test_bytes_read_out_of_order_hash_like_the_file(tmp_path: Path, short_waits,
                                                       seed: int) -> None:
    data = random_bytes(3 * 1024 * 1024 + 777, seed=200 + seed)
    path = tmp_path / "part"
    path.write_bytes(data)
    chunks = _chunks(len(data), seed)
    # Near order, as in-order pieces give, with some chunks far ahead of the window.
    order = sorted(range(len(chunks)), key=lambda i: i + random.Random(seed * 7 + i).randrange(6))
    prefix = _Prefix()
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, len(data),  # type: ignore[arg-type]
                                    window=512 * 1024)
    _feed(hasher, data, chunks, prefix, order)
    assert hasher.digests() == {"sha256": sha256(data)}
    assert 0 < hasher.from_memory < len(data)  # some from the ring, some read back


def test_bytes_written_before_a_resume_are_read_back(tmp_path: Path, short_waits) -> None:
    data = random_bytes(2 * 1024 * 1024 + 5, seed=210)
    path = tmp_path / "part"
    path.write_bytes(data)
    half = 1024 * 1024 + 3  # the resumed part starts off a block boundary
    chunks = [(o + half, n) for o, n in _chunks(len(data) - half, 1)]
    prefix = _Prefix(half)
    hasher = hashing.TrailingHasher(str(path), {"sha256", "md5"}, prefix, len(data),  # type: ignore[arg-type]
                                    window=4 * 1024 * 1024)
    _feed(hasher, data, [(0, half), *chunks], prefix, list(range(1, len(chunks) + 1)))
    assert hasher.digests() == {"sha256": sha256(data), "md5": hashlib.md5(data).hexdigest()}
    assert hasher.from_memory == len(data) - half


def test_read_back_direct_from_unaligned_places(tmp_path: Path, short_waits) -> None:
    (tmp_path / "probe").touch()
    probe = direct.open_direct(str(tmp_path / "probe"))
    if probe is None:
        pytest.skip("this file system refuses O_DIRECT")
    os.close(probe)
    data = random_bytes(3 * 1024 * 1024 + 4099, seed=220)
    path = tmp_path / "part"
    path.write_bytes(data)
    chunks = _chunks(len(data), 3)
    prefix = _Prefix()
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, len(data),  # type: ignore[arg-type]
                                    direct_io=True, window=64 * 1024)
    # Only every third chunk goes through the ring: the others come from the disk, starting and
    # ending wherever those left off.
    through_ring = {i for i in range(len(chunks)) if i % 3 == 0}
    _feed(hasher, data, chunks, prefix, sorted(through_ring))
    prefix.done = len(data)
    assert hasher.digests() == {"sha256": sha256(data)}
    assert hasher.from_memory < len(data)


def test_a_download_stopped_early_has_no_digest(tmp_path: Path, short_waits) -> None:
    data = random_bytes(1024 * 1024, seed=230)
    path = tmp_path / "part"
    path.write_bytes(data)
    prefix = _Prefix()
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, len(data))  # type: ignore[arg-type]
    _feed(hasher, data, [(0, 1000)], prefix, [0])
    assert hasher.digests() is None


def test_places_sit_like_their_bytes_in_a_page_and_stop_where_the_ring_wraps(
        tmp_path: Path) -> None:
    size = 1024 * 1024
    path = tmp_path / "part"
    path.write_bytes(bytes(size))
    asked = 256 * 1024 + 100  # not whole pages: the ring is cut down to them
    window = 256 * 1024
    prefix = _Prefix()
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, size,  # type: ignore[arg-type]
                                    window=asked)
    try:
        place = hasher.place_for(4096 * 3 + 100, 8192)
        assert place is not None and len(place) == 8192
        # A direct write needs the bytes at the same place within a page as in the file.
        assert ctypes.addressof(ctypes.c_char.from_buffer(place)) % 4096 == 100
        place = hasher.place_for(window - 1000, 8192)
        assert place is not None and len(place) == 1000  # the rest goes to the ring's start
        # A lap later, still at the same place within a page.
        data = bytes(size)
        _feed(hasher, data, [(0, window)], prefix, [0])
        place = hasher.place_for(window + 4096 * 5 + 7, 4096)
        assert place is not None
        assert ctypes.addressof(ctypes.c_char.from_buffer(place)) % 4096 == 7
    finally:
        hasher.abandon()


def test_a_connection_ahead_of_the_window_gets_its_place_once_the_hash_moves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MAX_WAIT", 30.0)
    data = random_bytes(512 * 1024, seed=240)
    path = tmp_path / "part"
    path.write_bytes(data)
    prefix = _Prefix()
    window = 128 * 1024
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, len(data),  # type: ignore[arg-type]
                                    window=window)
    got: list[memoryview | None] = []
    ahead = threading.Thread(target=lambda: got.append(hasher.place_for(window, 4096)))
    ahead.start()
    ahead.join(0.2)
    assert ahead.is_alive(), "a place beyond the window must wait for the hash"
    began = time.monotonic()
    _feed(hasher, data, [(0, window)], prefix, [0])
    ahead.join(10)
    assert got and got[0] is not None and len(got[0]) == 4096
    assert time.monotonic() - began < 5, "woken by the hash, not by the end of its wait"
    _feed(hasher, data, [(window, len(data) - window)], prefix, [0])
    assert hasher.digests() == {"sha256": sha256(data)}


def test_connections_waiting_for_room_go_on_when_the_hash_is_abandoned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MAX_WAIT", 30.0)
    path = tmp_path / "part"
    path.write_bytes(bytes(512 * 1024))
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, _Prefix(), 512 * 1024,  # type: ignore[arg-type]
                                    window=64 * 1024)
    got: list[memoryview | None] = [memoryview(b"unset")]
    ahead = threading.Thread(target=lambda: got.__setitem__(0, hasher.place_for(256 * 1024, 4096)))
    ahead.start()
    ahead.join(0.2)
    assert ahead.is_alive()
    began = time.monotonic()
    hasher.abandon()  # a pause: the connection must not sit out its whole wait
    ahead.join(10)
    assert not ahead.is_alive() and got[0] is None
    assert time.monotonic() - began < 5
