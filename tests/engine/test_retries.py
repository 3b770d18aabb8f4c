"""Network trouble ends with the right bytes or one clear error, never a wrong file."""

from __future__ import annotations

from pathlib import Path

from laden.core.states import State
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, part_files, sha256


def _get(http_server, downloads: Path, faults: Faults, *, size: int = 2_000_000, **config):
    data = random_bytes(size, seed=size % 97)
    url = http_server.add_file("/f.bin", data, faults=faults)
    with manager(FAST.replace(**config)) as m:
        info = m.wait(m.add(url, str(downloads)))
    return info, data


def test_dropped_connections_are_retried(http_server, downloads: Path) -> None:
    info, data = _get(http_server, downloads, Faults(drop_after=100_000, drop_every_other=True))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert info.retries > 0


def test_503_and_429_with_retry_after(http_server, downloads: Path) -> None:
    faults = Faults(status_sequence=[(503, {"Retry-After": "0"}), (429, {"Retry-After": "0"}),
                                     (500, {})])
    info, data = _get(http_server, downloads, faults, connections=1)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_stalled_connection_is_reopened(http_server, downloads: Path) -> None:
    faults = Faults(stall_after=50_000, stall_seconds=30, stall_times=1)
    info, data = _get(http_server, downloads, faults, connections=2, stall_timeout=0.5)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert any("stalled" in e.message for e in info.errors)


def test_not_found_fails_with_one_clear_message(http_server, downloads: Path) -> None:
    with manager() as m:
        info = m.wait(m.add(http_server.base_url + "/missing.bin", str(downloads)))
    assert info.state is State.FAILED
    assert "404" in info.message and "missing.bin" in info.message
    assert list(downloads.iterdir()) == []


def test_connection_refused_fails_after_retries(downloads: Path) -> None:
    with manager(FAST.replace(retries=1)) as m:
        info = m.wait(m.add("http://127.0.0.1:9/x.bin", str(downloads)))
    assert info.state is State.FAILED
    assert "refused" in info.message


def test_short_and_extra_bytes_never_reach_the_final_file(http_server, downloads: Path) -> None:
    for faults in (Faults(short_bytes=1000, drop_times=None), Faults(extra_bytes=10)):
        info, data = _get(http_server, downloads, faults, retries=2)
        if info.state is State.DONE:
            assert sha256(Path(info.dest)) == sha256(data)
        else:
            assert info.message and not Path(info.dest).exists()
        for path in downloads.iterdir():
            if path.is_file() and not path.name.endswith(".laden-part"):
                assert sha256(path) == sha256(data)
            path.unlink()


def test_server_that_ignores_range_mid_download(http_server, downloads: Path) -> None:
    info, data = _get(http_server, downloads, Faults(full_body_after_requests=3),
                      size=3_000_000, connections=4)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)


def test_per_host_cap_and_learned_limit(http_server, downloads: Path) -> None:
    info, data = _get(http_server, downloads, Faults(max_connections=3), size=4_000_000,
                      connections=8)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert part_files(downloads) == []


def test_bandwidth_limit_holds(http_server, downloads: Path) -> None:
    import time

    data = random_bytes(600_000, seed=5)
    url = http_server.add_file("/slow.bin", data)
    with manager(FAST.replace(limit_rate=400_000, connections=4)) as m:
        began = time.monotonic()
        info = m.wait(m.add(url, str(downloads)))
        took = time.monotonic() - began
    assert info.state is State.DONE
    # 600 kB at 400 kB/s cannot take much under 1.5 s (a quarter second of burst allowed).
    assert took >= 1.0
