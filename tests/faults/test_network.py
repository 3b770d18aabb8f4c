"""Network faults, each of which must end with the right bytes or one clear error, and never
with a wrong file under the final name.

The table runs each fault against the fault-injecting server on 127.0.0.1; the scenarios that
need a sequence of events (a second download, a second session, a server that goes away and
comes back) are functions below it. Every scenario counts towards the "passed / tried" figure.
"""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import FAST, manager, sha256
from laden.core.config import Config
from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from laden.sources.http import PROBE_RANGE
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from . import figures
from .helpers import finished_files, part_files, wait_for
from .relays import TcpRelay

SIZE = 2 << 20


@contextmanager
def scenario(name: str) -> Iterator[None]:
    """Count a scenario as tried, and as passed only if its block raises nothing."""
    try:
        yield
    except BaseException:
        figures.scenario(name, False)
        raise
    figures.scenario(name, True)


@dataclass
class Fault:
    name: str
    faults: Callable[[], Faults]
    expect: str  # "done": the right bytes; "error": a clear error; "either"
    words: str = ""  # in the error message, when it ends in one
    config: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    size: int = SIZE
    at_least: float = 0.0  # seconds it must take (a Retry-After honoured)
    during: Callable[[Faults], None] | None = None  # flipped once the first bytes are in


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def _switch_on(name: str, value: Any) -> Callable[[Faults], None]:
    return lambda faults: setattr(faults, name, value)


TABLE = [
    Fault("reset after N bytes on every other connection",
          lambda: Faults(drop_after=150_000, drop_every_other=True), "done"),
    Fault("stall longer than the stall timeout",
          lambda: Faults(stall_after=100_000, stall_seconds=30, stall_times=2), "done",
          config={"stall_timeout": 0.5}),
    Fault("very slow trickle, never quite a stall",
          lambda: Faults(rate_per_connection=50_000), "done",
          config={"stall_timeout": 1.0, "connections": 4}, size=256 << 10),
    Fault("429 with Retry-After in seconds",
          lambda: Faults(status_sequence=[(429, {"Retry-After": "1"})]), "done", at_least=0.9),
    Fault("503 with Retry-After as an HTTP date",
          lambda: Faults(status_sequence=[(503, {"Retry-After": _http_date(2)})]), "done",
          at_least=0.9),
    Fault("a burst of 500s",
          lambda: Faults(status_sequence=[(500, {})] * 3), "done", config={"retries": 4}),
    Fault("500 for good",
          lambda: Faults(status_sequence=[(500, {})] * 50), "error", "HTTP 500",
          config={"retries": 1}),
    Fault("server ignores Range",
          lambda: Faults(ignore_range=True), "done"),
    Fault("200 with the whole body to a ranged request mid-download",
          lambda: Faults(full_body_after_requests=4), "done", config={"connections": 4}),
    Fault("wrong Content-Range mid-download",
          lambda: Faults(rate_per_connection=500_000, drop_after=400_000, drop_times=1),
          "error", "answered bytes", config={"retries": 1, "connections": 1},
          during=_switch_on("wrong_content_range", True)),
    # Its ranged answers cannot be trusted, and its whole file can: one stream finishes it.
    Fault("more bytes than asked",
          lambda: Faults(extra_bytes=10), "done", config={"retries": 1}),
    Fault("fewer bytes than asked",
          lambda: Faults(short_bytes=1000), "error", "before the range ended",
          config={"retries": 1}),
    Fault("fewer bytes once, then right",
          lambda: Faults(short_bytes=0, drop_after=300_000, drop_times=3), "done"),
    Fault("ETag that changes on every request, content the same",
          lambda: Faults(change_etag_every_request=True), "done"),
    Fault("missing Content-Length",
          lambda: Faults(no_content_length=True), "done"),
    Fault("chunked transfer encoding",
          lambda: Faults(chunked=True), "done"),
    Fault("gzip on ranged responses",
          lambda: Faults(gzip=True), "error", "Content-Encoding: gzip"),
    Fault("gzip on chunked ranged responses (no length to give it away)",
          lambda: Faults(gzip=True, chunked=True), "error", "Content-Encoding: gzip"),
    Fault("a file stored compressed, sent with Content-Encoding: gzip",
          lambda: Faults(), "done", headers={"Content-Encoding": "gzip"}),
    Fault("no ETag, no Last-Modified",
          lambda: Faults(no_etag=True), "done"),
]


def _check_outcome(info: DownloadInfo, data: bytes, folder: Path, expect: str,
                   words: str) -> None:
    for path in finished_files(folder):
        assert path.read_bytes() == data, f"a wrong file under a final name: {path}"
    if info.state is State.DONE:
        assert expect in ("done", "either"), f"expected an error, got the file ({expect})"
        assert sha256(Path(info.dest)) == sha256(data)
        assert part_files(folder) == []
        return
    assert expect in ("error", "either"), f"{info.state.value}: {info.message}"
    assert info.state in (State.FAILED, State.PAUSED)
    assert info.message and "\n" not in info.message and "internal error" not in info.message
    assert words in info.message, info.message
    assert not Path(info.dest).exists()


@pytest.mark.parametrize("fault", TABLE, ids=[f.name for f in TABLE])
def test_network_fault(fault: Fault, http_server: FileServer, downloads: Path) -> None:
    with scenario(fault.name):
        data = random_bytes(fault.size, seed=len(fault.name))
        faults = fault.faults()
        url = http_server.add_file("/fault.bin", data, faults=faults, headers=fault.headers)
        config = FAST.replace(**{"retries": 3, **fault.config})
        began = time.monotonic()
        with manager(config) as m:
            download_id = m.add(url, str(downloads))
            if fault.during is not None:
                wait_for(lambda: m.get(download_id).done > 200_000, what="the first bytes")
                fault.during(faults)
            info = m.wait(download_id, timeout=60)
        assert time.monotonic() - began >= fault.at_least, "Retry-After was not honoured"
        _check_outcome(info, data, downloads, fault.expect, fault.words)


# -- scenarios that need more than one step --------------------------------------------------


def test_403_past_n_connections_lowers_and_remembers_the_host_limit(
        http_server: FileServer, downloads: Path) -> None:
    with scenario("403 after more than N connections; the limit is remembered"):
        first, second = random_bytes(4 << 20, seed=901), random_bytes(4 << 20, seed=902)
        # Paced, so that eight connections really are open at once.
        capped = Faults(max_connections=3, rate_per_connection=2_000_000)
        url1 = http_server.add_file("/first.bin", first, faults=capped)
        url2 = http_server.add_file("/second.bin", second,
                                    faults=Faults(max_connections=3, rate_per_connection=2_000_000))
        with manager(FAST.replace(connections=8)) as m:
            info = m.wait(m.add(url1, str(downloads)))
            assert info.state is State.DONE, info.message
            limit = m.hosts.limit("127.0.0.1")
            assert limit <= 3, f"the host's limit stayed at {limit}"
            info2 = m.wait(m.add(url2, str(downloads)))
        assert info2.state is State.DONE, info2.message
        assert sha256(Path(info.dest)) == sha256(first)
        assert sha256(Path(info2.dest)) == sha256(second)
        assert any(r.status == 403 for r in http_server.requests if r.path == "/first.bin")
        http_server_second = [r for r in http_server.requests if r.path == "/second.bin"]
        assert http_server.max_concurrent["/second.bin"] <= limit
        assert not any(r.status == 403 for r in http_server_second), \
            "the second download from the host was not told its limit"


def test_expired_signed_redirect_is_resolved_again(http_server: FileServer,
                                                   downloads: Path) -> None:
    with scenario("redirect to a signed URL that expires partway"):
        data = random_bytes(4 << 20, seed=903)
        http_server.add_file("/storage/object.bin", data,
                             faults=Faults(rate_per_connection=2_000_000))
        url = http_server.add_signed_redirect("/get/object.bin", "/storage/object.bin",
                                              expire_after_requests=3)
        with manager(FAST.replace(connections=4)) as m:
            info = m.wait(m.add(url, str(downloads)))
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
        signed = [r for r in http_server.requests if r.path.startswith("/get/")]
        assert len(signed) >= 2, "the original address was never asked again"
        assert info.url == url and Path(info.dest).name == "object.bin"


def test_etag_changed_between_sessions_restarts(http_server: FileServer,
                                                downloads: Path) -> None:
    with scenario("ETag changed between sessions"):
        old, new = random_bytes(3 << 20, seed=904), random_bytes(3 << 20, seed=905)
        url = http_server.add_file("/sessions.bin", old,
                                   faults=Faults(rate_per_connection=300_000))
        with manager() as m:
            download_id = m.add(url, str(downloads))
            wait_for(lambda: m.get(download_id).done > 500_000, what="the first bytes")
        http_server.set_content("/sessions.bin", new)
        http_server.set_faults("/sessions.bin", Faults())
        with manager(resume_interrupted=True) as m:
            info = m.wait(download_id)
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(new)
        assert any("changed" in e.message for e in info.errors)


def test_tokenized_etag_policy_survives_sessions(http_server: FileServer,
                                                 downloads: Path) -> None:
    """Policy (README, "Policies"): an ETag that changes on every answer while size and
    Last-Modified stay the same is dropped; Last-Modified and size are pinned instead, in this
    session and the next, so the bytes on disk are kept and nothing loops."""
    with scenario("tokenized ETag: kept bytes across sessions, no loop"):
        data = random_bytes(3 << 20, seed=906)
        faults = Faults(change_etag_every_request=True, rate_per_connection=300_000)
        url = http_server.add_file("/token.bin", data, faults=faults)
        with manager() as m:
            download_id = m.add(url, str(downloads))
            wait_for(lambda: m.get(download_id).done > 500_000, what="the first bytes")
            before = m.get(download_id)
        assert any("tokenized" in e.message for e in before.errors)
        http_server.set_faults("/token.bin", Faults(change_etag_every_request=True))
        http_server.clear_log()
        with manager(resume_interrupted=True) as m:
            info = m.wait(download_id, timeout=30)
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
        assert not any("changed" in e.message and "starting again" in e.message
                       for e in info.errors), "restarted although the content was the same"
        starts = [int(r.range.split("=")[1].split("-")[0]) for r in http_server.requests
                  if r.range and r.range != PROBE_RANGE]
        assert starts and not any(s <= x < e for x in starts for s, e in before.done_ranges)
        requests = len(http_server.requests)
        assert requests < 60, f"{requests} requests: it looped"


def test_tokenized_etag_with_a_real_change_still_restarts(http_server: FileServer,
                                                          downloads: Path) -> None:
    with scenario("tokenized ETag and a real change of size: restart, never stitch"):
        old, new = random_bytes(3 << 20, seed=907), random_bytes((3 << 20) + 1000, seed=908)
        faults = Faults(change_etag_every_request=True, rate_per_connection=300_000)
        url = http_server.add_file("/token2.bin", old, faults=faults)
        with manager() as m:
            download_id = m.add(url, str(downloads))
            wait_for(lambda: m.get(download_id).done > 500_000, what="the first bytes")
        http_server.set_content("/token2.bin", new)
        http_server.set_faults("/token2.bin", Faults(change_etag_every_request=True))
        with manager(resume_interrupted=True) as m:
            info = m.wait(download_id, timeout=30)
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(new)


# -- the server goes away and comes back -----------------------------------------------------


def _no_real_dns(monkeypatch: pytest.MonkeyPatch, up: threading.Event) -> None:
    """Name resolution for `*.invalid` without asking any DNS server: fails while `up` is
    clear (NXDOMAIN), answers 127.0.0.1 while it is set. Other names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.endswith(".invalid"):
            if not up.is_set():
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


RETRY_FAST: Config = FAST.replace(retries=2, connect_timeout=2)


def test_dns_failure_is_clear_and_the_download_stays_resumable(
        http_server: FileServer, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario("DNS failure: clear error, retries, resumable"):
        data = random_bytes(3 << 20, seed=909)
        http_server.add_file("/dns.bin", data, faults=Faults(rate_per_connection=300_000))
        relay = TcpRelay(http_server.port)
        relay.start()
        dns = threading.Event()
        dns.set()
        _no_real_dns(monkeypatch, dns)
        url = f"http://files.invalid:{relay.port}/dns.bin"
        try:
            with manager(RETRY_FAST) as m:
                download_id = m.add(url, str(downloads))
                wait_for(lambda: m.get(download_id).done > 400_000, what="the first bytes")
                dns.clear()
                relay.stop()  # the connections drop, and the name no longer resolves
                info = wait_settled(m, download_id)
                assert info.state is State.FAILED, info.message
                assert "cannot resolve host files.invalid" in info.message, info.message
                assert info.retries > 0 and info.resumable and info.done > 0
                kept = info.done_ranges
                assert part_files(downloads) and not Path(info.dest).exists()
                dns.set()
                relay.start()
                http_server.set_faults("/dns.bin", Faults())
                http_server.clear_log()
                m.resume(download_id)
                info = wait_settled(m, download_id)
        finally:
            relay.stop()
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)
        starts = [int(r.range.split("=")[1].split("-")[0]) for r in http_server.requests
                  if r.range and r.range != PROBE_RANGE]
        assert not any(s <= x < e for x in starts for s, e in kept), "kept bytes fetched again"


def test_connection_refused_is_clear_and_the_download_stays_resumable(
        http_server: FileServer, downloads: Path) -> None:
    with scenario("connection refused: clear error, retries, resumable"):
        data = random_bytes(3 << 20, seed=910)
        http_server.add_file("/refused.bin", data, faults=Faults(rate_per_connection=300_000))
        relay = TcpRelay(http_server.port)
        relay.start()
        url = f"http://127.0.0.1:{relay.port}/refused.bin"
        try:
            with manager(RETRY_FAST) as m:
                download_id = m.add(url, str(downloads))
                wait_for(lambda: m.get(download_id).done > 400_000, what="the first bytes")
                relay.stop()
                info = wait_settled(m, download_id)
                assert info.state is State.FAILED
                assert "refused" in info.message, info.message
                assert info.retries > 0 and info.resumable and info.done > 0
                relay.start()  # the same port again
                http_server.set_faults("/refused.bin", Faults())
                m.resume(download_id)
                info = wait_settled(m, download_id)
        finally:
            relay.stop()
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)


def test_refused_from_the_start_on_the_command_line(downloads: Path,
                                                   laden_dirs: dict[str, Path]) -> None:
    from engine.helpers import run_laden

    with scenario("connection refused from the start (command line)"):
        (laden_dirs["config"] / "config.toml").write_text("retries = 1\n")
        with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = run_laden("get", "-q", "-o", str(downloads),
                           f"http://127.0.0.1:{port}/x.bin")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused the connection" in lines[0], result.stderr
        listing = run_laden("list", "--json")
        assert '"state": "failed"' in listing.stdout
        again = run_laden("resume", "--all", "-q")  # resumable: tried again, same clear error
        assert again.returncode == 1 and "refused" in again.stderr


def wait_settled(m: Any, download_id: int, timeout: float = 30) -> DownloadInfo:
    wait_for(lambda: m.get(download_id).state in (State.DONE, State.FAILED, State.PAUSED)
             and m.queue.get(download_id).transfer is None, timeout=timeout, what="the end")
    return m.get(download_id)


def test_redirect_loop_is_one_clear_error(http_server: FileServer, downloads: Path) -> None:
    with scenario("redirect loop"):
        url = http_server.add_redirect("/loop", "/loop")
        with manager() as m:
            info = m.wait(m.add(url, str(downloads)))
        assert info.state is State.FAILED and "too many redirects" in info.message
        assert list(downloads.iterdir()) == []
