"""With a checksum to check, pieces go in order and the hash is computed during the download."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from laden.engine import direct, finishing, hashing, transfer
from laden.engine.states import State
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
    monkeypatch.setattr(transfer, "IN_ORDER_PIECE", 1 << 20)


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
    """Offer chunks in `order`, as connections do after each write, and move the prefix on."""
    view = memoryview(data)
    written: set[int] = set()
    ends = dict(chunks)
    for i in order:
        offset, n = chunks[i]
        hasher.offer(offset, view[offset : offset + n])
        written.add(offset)
        while prefix.done < len(data) and prefix.done in written:
            prefix.done += ends[prefix.done]


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MAX_WAIT", 0.01)


@pytest.mark.parametrize("seed", range(4))
def test_bytes_offered_out_of_order_hash_like_the_file(tmp_path: Path, short_waits,
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
    # Only every third chunk is offered: the others come from the disk, starting and ending
    # wherever the offered ones left off.
    offered = {i for i in range(len(chunks)) if i % 3 == 0}
    _feed(hasher, data, chunks, prefix, sorted(offered))
    prefix.done = len(data)
    assert hasher.digests() == {"sha256": sha256(data)}
    assert hasher.from_memory < len(data)


def test_a_download_stopped_early_has_no_digest(tmp_path: Path, short_waits) -> None:
    data = random_bytes(1024 * 1024, seed=230)
    path = tmp_path / "part"
    path.write_bytes(data)
    prefix = _Prefix()
    hasher = hashing.TrailingHasher(str(path), {"sha256"}, prefix, len(data))  # type: ignore[arg-type]
    hasher.offer(0, memoryview(data)[:1000])
    prefix.done = 1000
    assert hasher.digests() is None
