"""Large plain-HTTP ranges go socket -> pipe -> file in the kernel; the bytes must not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from laden.core.states import State
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

SIZE = 24 * 1024 * 1024  # 3 connections of 8 MiB each: above the splice threshold


@pytest.fixture
def splices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.splice

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        moved = real(*args, **kwargs)
        calls.append(moved)
        return moved

    monkeypatch.setattr(os, "splice", counting)
    return calls


@pytest.mark.parametrize(("faults", "spliced"), [
    (Faults(), True),
    (Faults(drop_after=5_000_000, drop_every_other=True), True),
    (Faults(stall_after=3_000_000, stall_seconds=30, stall_times=1), True),
    # A slow connection hands over small chunks: laden goes back to readinto mid-response.
    (Faults(rate_per_connection=8_000_000), False),
], ids=["clean", "drops", "stall", "capped"])
def test_spliced_download_is_exact(http_server, downloads: Path, splices, faults,
                                   spliced: bool) -> None:
    data = random_bytes(SIZE, seed=60)
    url = http_server.add_file("/big.bin", data, faults=faults)
    with manager(FAST.replace(connections=3, stall_timeout=1.0,
                              min_segment_size=4 << 20)) as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    if spliced:
        assert sum(splices) > SIZE // 2, "large ranges should have been spliced"
    else:
        assert 0 < sum(splices) < SIZE // 2, "a slow connection should have left splice"


def test_https_never_splices(tmp_path, downloads: Path, splices) -> None:
    import ssl

    import trustme

    from servers.http_server import FileServer

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    data = random_bytes(SIZE, seed=61)
    with FileServer(ssl_context=context) as server:
        url = server.add_file("/tls.bin", data)
        with manager(FAST.replace(connections=2, min_segment_size=4 << 20)) as m:
            info = m.wait(m.add(url, str(downloads), ca_bundle=str(bundle)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert splices == []


class _Memory:
    """A sink keeping what it is sent at its offsets (`http_reader.PipeSink`)."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def write(self, data: memoryview, offset: int) -> None:
        self.data[offset:offset + len(data)] = data

    def splice_in(self, pipe: int, count: int, offset: int) -> None:
        while count:
            chunk = os.read(pipe, count)
            self.write(memoryview(chunk), offset)
            offset += len(chunk)
            count -= len(chunk)


@pytest.mark.parametrize("count", [1000, 4096, 60_000])
def test_small_splices_take_every_byte_the_headers_buffer_holds(http_server, count: int) -> None:
    """A rate limit asks for small reads (4 KiB at 40 KB/s): the body bytes read along with
    the headers must all go first, however many reads that takes."""
    import urllib3

    from laden.sources.http_reader import HttpRangeReader

    data = random_bytes(5 << 20, seed=62)
    url = http_server.add_file("/small-reads.bin", data)
    with urllib3.PoolManager() as pool:
        response = pool.request("GET", url, preload_content=False)
        reader = HttpRangeReader(response)
        assert reader.can_splice
        sink, offset = _Memory(len(data)), 0
        while moved := reader.splice_into(sink, offset, count):
            offset += moved
        response.release_conn()
    assert offset == len(data)
    assert sink.data == data
