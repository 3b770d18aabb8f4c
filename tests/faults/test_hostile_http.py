"""Servers that break HTTP on purpose: a 206 of another version, a 416 without Content-Range,
ranges answered sometimes with 200, informational answers, a wrong checksum. Whatever they do,
laden never saves bytes of two versions under the final name, never saves an empty file it was
not given, and ends each download in seconds with the right bytes or one clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path

import pytest

from engine.helpers import FAST, manager
from laden.core.states import State
from laden.sources.http import PROBE_RANGE

from .hostile import HostileServer, Reply, Request, ranged, wait_until
from .test_network import scenario

SIZE = 600 * 1024  # several ranges with FAST's 64 KiB segments, more than the probe reads
V1 = bytes(range(256)) * (SIZE // 256)
V2 = bytes(reversed(range(256))) * (SIZE // 256)
assert V1 != V2 and len(V1) == len(V2) == SIZE


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _saved(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()
            and not p.name.endswith(".laden-part")}


def _never_mixed(folder: Path) -> None:
    for name, data in _saved(folder).items():
        assert data in (V1, V2), f"{name} is a mix of two versions of the file"


# -- 1. a 206 of another version ------------------------------------------------------------

def _switching_server(validator: str, *, flip_every: int | None = None) -> HostileServer:
    """Version 1 for the probe and the first range, then version 2 answered as 206 to every
    later range, whatever If-Range says (a cache or server that ignores it). With
    `flip_every`, the versions keep alternating, so no restart can ever see one version."""

    def answer(request: Request, reply: Reply) -> None:
        new = request.number > 2 if flip_every is None else request.number // flip_every % 2 == 1
        data, tag = (V2, "v2") if new else (V1, "v1")
        headers = ({"ETag": f'"{tag}"'} if validator == "etag" else
                   {"Last-Modified": "Tue, 01 Dec 2026 10:00:0" + ("1" if new else "0")
                    + " GMT"})
        headers["Accept-Ranges"] = "bytes"
        status, extra, body = ranged(data, request, headers)
        reply.send(status, extra, body)

    return HostileServer(answer)


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_206_of_another_version_is_never_written(downloads: Path, validator: str) -> None:
    with scenario(f"206 of another version ({validator})"), \
            _switching_server(validator) as server, manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=60)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V2}  # started again, and kept one version
        assert any("changed" in e.message for e in info.errors)


def test_versions_that_never_settle_fail_without_a_mixed_file(downloads: Path) -> None:
    with scenario("206s alternating between two versions"), \
            _switching_server("etag", flip_every=2) as server, manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=60)
        _never_mixed(downloads)
        if info.state is State.FAILED:
            assert "changed" in info.message
        else:
            assert info.state is State.DONE


# -- 3. a 416 without Content-Range ----------------------------------------------------------

def test_a_416_without_content_range_is_not_an_empty_file(downloads: Path) -> None:
    """The server refuses the probe's range without saying the size: laden asks again
    without a range and takes the whole file."""

    def answer(request: Request, reply: Reply) -> None:
        if request.range is not None:
            reply.send(416, {})
        else:
            reply.send(200, {}, V1)

    with scenario("416 without Content-Range, then 200"), HostileServer(answer) as server, \
            manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=30)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V1}


def test_a_416_to_every_request_fails_and_saves_nothing(downloads: Path) -> None:
    def answer(request: Request, reply: Reply) -> None:
        reply.send(416, {"Content-Type": "text/plain"}, b"no")

    with scenario("416 to every request"), HostileServer(answer) as server, manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=30)
        assert info.state is State.FAILED
        assert "416" in info.message
        assert _saved(downloads) == {}


def test_a_416_that_says_the_file_is_empty_saves_an_empty_file(downloads: Path) -> None:
    def answer(request: Request, reply: Reply) -> None:
        reply.send(416, {"Content-Range": "bytes */0"})

    with scenario("416 with bytes */0"), HostileServer(answer) as server, manager() as m:
        info = m.wait(m.add(server.url("/empty.bin"), str(downloads)), timeout=30)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"empty.bin": b""}


# -- 7. ranges answered sometimes with 200 ---------------------------------------------------

def _sometimes_200(pattern: str) -> HostileServer:
    """`pattern`: "later" (the probe 206, every later range 200), "alternate" (206, 200, 206...)
    or "first" (the first range after the probe 200, the rest 206)."""

    def answer(request: Request, reply: Reply) -> None:
        status, headers, body = ranged(V1, request, {"ETag": '"one"', "Accept-Ranges": "bytes"})
        whole = (pattern == "later" and request.number > 1) or (
            pattern == "alternate" and request.number % 2 == 0) or (
            pattern == "first" and request.number == 2)
        if whole and status == 206:
            status, headers, body = 200, {"ETag": '"one"'}, V1
        with contextlib.suppress(OSError):
            reply.send(status, headers, body)

    return HostileServer(answer)


@pytest.mark.parametrize("pattern", ["later", "alternate", "first"])
def test_ranges_answered_with_200_fall_back_to_one_stream(downloads: Path, pattern: str) -> None:
    server = _sometimes_200(pattern)
    with scenario(f"ranges answered with 200 ({pattern})"), server, manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=60)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V1}
        # One fallback, not a restart per 200: one probe more, then one stream.
        asked = [r.headers.get("range") for r in server.requests]
        assert asked.count(PROBE_RANGE) == 2, asked
        assert asked.count(None) == 1, asked
        assert not any("giving up" in e.message for e in info.errors)


def test_one_stream_is_remembered_across_sessions(downloads: Path) -> None:
    """After the fallback, the download is paused; in the next session the probe shows ranges
    again, and the download still goes on as one stream."""

    def answer(request: Request, reply: Reply) -> None:
        status, headers, body = ranged(V1, request, {"ETag": '"one"'})
        if request.number == 1 or request.headers.get("range") == PROBE_RANGE:
            reply.send(status, headers, body)
            return
        reply.head(200, {"ETag": '"one"', "Content-Length": str(SIZE)})
        reply.trickle(V1, every=0.1, piece=8 << 10)

    with scenario("one stream remembered across sessions"), HostileServer(answer) as server:
        with manager() as m:
            download_id = m.add(server.url("/f.bin"), str(downloads), connections=4)
            assert wait_until(lambda: m.get(download_id).done > 0 and any(
                "ignored a Range" in e.message for e in m.get(download_id).errors))
            m.pause(download_id)
            assert m.get(download_id).state is State.PAUSED
        seen = len(server.requests)
        with manager() as m:
            m.resume(download_id)
            info = m.wait(download_id, timeout=60)
            assert info.state is State.DONE, info.message
        after = [r.headers.get("range") for r in server.requests[seen:]]
        assert PROBE_RANGE in after  # the probe asked for ranges, and the server gave them
        assert set(after) <= {PROBE_RANGE, None}, after  # yet no range was asked for again
        assert _saved(downloads) == {"f.bin": V1}


# -- 9. a wrong checksum ---------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [True, False])
def test_a_wrong_checksum_fails_at_once(downloads: Path, ranges: bool) -> None:
    def answer(request: Request, reply: Reply) -> None:
        if ranges:
            status, headers, body = ranged(V1, request, {"ETag": '"one"'})
        else:
            status, headers, body = 200, {}, V1
        reply.send(status, headers, body)

    wrong = "sha256:" + "0" * 64
    with scenario(f"wrong --checksum ({'ranges' if ranges else 'no ranges'})"), \
            HostileServer(answer) as server, manager() as m:
        began = time.monotonic()
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), checksum=wrong), timeout=60)
        took = time.monotonic() - began
        assert info.state is State.FAILED
        assert "mismatch" in info.message
        assert took < FAST.stall_timeout, f"took {took:.1f} s to fail"
        whole_fetches = sum(1 for r in server.requests if r.range is None or r.range[0] == 0)
        # The probe, the first range (or the one stream) and a probe that shows the remote
        # unchanged: never a second pass over the file.
        assert whole_fetches <= 3
        assert _saved(downloads) == {}


# -- 10. informational answers ---------------------------------------------------------------

@pytest.mark.parametrize("informational", [
    [b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"],
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n"],
    [b"HTTP/1.1 102 Processing\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\n\r\n"],
], ids=["103", "100+103", "102+103"])
def test_informational_answers_are_skipped(downloads: Path, informational: list[bytes]
                                           ) -> None:
    def answer(request: Request, reply: Reply) -> None:
        for head in informational:
            reply.raw(head)
        status, headers, body = ranged(V1, request, {"ETag": '"one"'})
        reply.send(status, headers, body)

    with scenario(f"informational answers {len(informational)}"), \
            HostileServer(answer) as server, manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=30)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V1}


# -- 14. Content-Length that is not a number -------------------------------------------------

@pytest.mark.parametrize("length", ["abc", "²", "614400, 614400", "614400, 1", "-5",
                                    "9" * 400])
@pytest.mark.parametrize("ranges", [True, False])
def test_a_content_length_that_is_not_a_number(downloads: Path, length: str, ranges: bool
                                               ) -> None:
    """Whatever the header says, the download ends with the file's bytes or one clear error,
    never an internal error."""

    def answer(request: Request, reply: Reply) -> None:
        status, headers, body = ranged(V1, request) if ranges else (200, {}, V1)
        reply.head(status, {**headers, "Content-Length": length, "Connection": "close"})
        reply.raw(body)
        reply.closed = True

    with scenario(f"Content-Length {length[:12]!r}"), HostileServer(answer) as server, \
            manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=60)
        assert "internal error" not in info.message
        if info.state is State.DONE:
            assert _saved(downloads) == {"f.bin": V1}
        else:
            assert info.state is State.FAILED and _saved(downloads) == {}


# -- 6. connections that trickle -------------------------------------------------------------

TRICKLY = FAST.replace(stall_timeout=3.0, connect_timeout=3.0, lowest_speed=4096, retries=2)


def test_a_trickling_connection_is_replaced(downloads: Path) -> None:
    """One range's first answer sends a byte every 1.5 s (never a stall); the others are fast.
    The slow connection is closed and a fresh one fetches its range."""
    trickled: list[int] = []

    def answer(request: Request, reply: Reply) -> None:
        status, headers, body = ranged(V1, request, {"ETag": '"one"'})
        asked = request.range
        if asked and asked[0] > 0 and not trickled:
            trickled.append(asked[0])
            reply.head(status, {**headers, "Content-Length": str(len(body))})
            reply.trickle(body, every=1.5)
            reply.closed = True
            return
        reply.send(status, headers, body)

    with scenario("one connection trickles"), HostileServer(answer) as server, \
            manager(TRICKLY) as m:
        began = time.monotonic()
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=60)
        assert info.state is State.DONE, info.message
        assert time.monotonic() - began < 20
        assert _saved(downloads) == {"f.bin": V1}
        assert any("too slow" in e.message or "slower" in e.message for e in info.errors)


def test_a_connection_far_behind_the_others_is_replaced(downloads: Path) -> None:
    """One range crawls at 8 KiB/s (above any low-speed limit) while the others are fast."""
    size = 4 << 20
    data = (V1 * (size // SIZE + 1))[:size]
    crawled: list[int] = []

    def answer(request: Request, reply: Reply) -> None:
        status, headers, body = ranged(data, request, {"ETag": '"one"'})
        asked = request.range
        if asked and asked[0] > 0 and not crawled:
            crawled.append(asked[0])
            reply.head(status, {**headers, "Content-Length": str(len(body))})
            reply.trickle(body, every=0.25, piece=2048)
            reply.closed = True
            return
        reply.head(status, {**headers, "Content-Length": str(len(body))})
        reply.trickle(body, every=0.01, piece=64 << 10)  # about 6 MiB/s

    config = TRICKLY.replace(lowest_speed=1024, min_segment_size=1 << 20)
    with scenario("one connection far behind"), HostileServer(answer) as server, \
            manager(config) as m:
        began = time.monotonic()
        info = m.wait(m.add(server.url("/f.bin"), str(downloads), connections=4), timeout=90)
        assert info.state is State.DONE, info.message
        took = time.monotonic() - began
        assert took < 60, f"{took:.0f} s: the crawling range was waited for"
        assert (downloads / "f.bin").read_bytes() == data
        assert any("slower than the others" in e.message for e in info.errors)


def test_one_stream_that_trickles_ends(downloads: Path) -> None:
    """A server without ranges that trickles for ever: the low-speed limit ends each try, and
    the retries end the download, in bounded time, with the reason."""

    def answer(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Length": str(SIZE)})
        reply.trickle(V1, every=1.5)
        reply.closed = True

    with scenario("one stream trickles"), HostileServer(answer) as server, \
            manager(TRICKLY) as m:
        began = time.monotonic()
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=90)
        assert info.state is State.FAILED
        assert "too slow" in info.message
        assert time.monotonic() - began < 45
        assert _saved(downloads) == {}


@pytest.mark.parametrize("where", ["status line", "headers"])
def test_an_answer_whose_headers_trickle_times_out(downloads: Path, where: str) -> None:
    """The first answer's head comes a byte every 1.5 s; the retry's comes at once."""

    def answer(request: Request, reply: Reply) -> None:
        if request.number == 1:
            head = (b"HTTP/1.1 200 OK\r\n" if where == "headers" else b"") + \
                b"X-Filler: " + b"a" * 200 + b"\r\n"
            if where == "status line":
                head = b"HTTP/1.1 200 OK" + b" " * 100
            reply.trickle(head, every=1.5)
            reply.closed = True
            return
        status, headers, body = ranged(V1, request, {"ETag": '"one"'})
        reply.send(status, headers, body)

    with scenario(f"headers trickle ({where})"), HostileServer(answer) as server, \
            manager(TRICKLY) as m:
        began = time.monotonic()
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=60)
        assert info.state is State.DONE, info.message
        assert time.monotonic() - began < 15
        assert _saved(downloads) == {"f.bin": V1}


# -- 8. weak validators are never sent in If-Range -------------------------------------------

def test_weak_validators_never_reach_if_range(downloads: Path) -> None:
    """Apache, for a file written in the same second: a weak ETag, and a Last-Modified equal to
    the answer's Date (a weak date). Neither may go in If-Range (RFC 9110 13.1.5); a second
    later Apache calls the same ETag strong, which is the same version."""
    import email.utils

    now = email.utils.formatdate(time.time(), usegmt=True)

    def answer(request: Request, reply: Reply) -> None:
        tag = 'W/"abc"' if request.number == 1 else '"abc"'
        headers = {"ETag": tag, "Last-Modified": now, "Date": now, "Accept-Ranges": "bytes"}
        if request.headers.get("if-range"):
            status, extra, body = 200, headers, V1  # as Apache answers a weak If-Range
        else:
            status, extra, body = ranged(V1, request, headers)
        reply.send(status, extra, body)

    with scenario("weak ETag and date"), HostileServer(answer) as server, manager() as m:
        info = m.wait(m.add(server.url("/fresh.bin"), str(downloads), connections=4), timeout=30)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"fresh.bin": V1}
        assert not [r for r in server.requests if r.headers.get("if-range")]
        assert not info.errors, [e.message for e in info.errors]


def test_a_strong_date_is_sent_in_if_range(downloads: Path) -> None:
    import email.utils

    then = email.utils.formatdate(time.time() - 3600, usegmt=True)

    def answer(request: Request, reply: Reply) -> None:
        headers = {"Last-Modified": then, "Accept-Ranges": "bytes"}
        status, extra, body = ranged(V1, request, headers)
        reply.send(status, extra, body)

    with scenario("strong date in If-Range"), HostileServer(answer) as server, manager() as m:
        info = m.wait(m.add(server.url("/old.bin"), str(downloads), connections=4), timeout=30)
        assert info.state is State.DONE, info.message
        assert {r.headers.get("if-range") for r in server.requests[1:]} == {then}


# -- a long Retry-After is said, not waited out in silence -----------------------------------

def test_a_long_retry_after_is_said_at_once(downloads: Path) -> None:
    from laden.engine import events

    def answer(request: Request, reply: Reply) -> None:
        reply.send(503, {"Retry-After": "1000000000"}, b"busy")

    seen: list[events.Retrying] = []
    with scenario("Retry-After of 10^9"), HostileServer(answer) as server, manager() as m:
        m.subscribe(lambda e: seen.append(e) if isinstance(e, events.Retrying) else None)
        download_id = m.add(server.url("/f.bin"), str(downloads))
        assert wait_until(lambda: bool(seen), timeout=10)
        info = m.get(download_id)
        assert info.retry_at is not None and info.retry_at - time.time() > 60
        assert "server asked" in info.message and "503" in info.message
        assert seen[0].wait == 300  # capped: a wait of 31 years is not waited for
        m.pause(download_id)
        assert m.get(download_id).state is State.PAUSED


def test_a_long_retry_after_is_in_the_json_and_the_progress_line(downloads: Path) -> None:
    """The command line says it as it starts waiting: an event in --json, a plain line."""
    from engine.helpers import run_laden

    asked: set[str] = set()

    def answer(request: Request, reply: Reply) -> None:
        if request.path not in asked:
            asked.add(request.path)
            reply.send(503, {"Retry-After": "3"}, b"busy")
        else:
            reply.send(*ranged(V1, request))

    with HostileServer(answer) as server:
        as_json = run_laden("get", "--json", "-o", str(downloads), server.url("/j.bin"))
        plain = run_laden("get", "-o", str(downloads / "p"), server.url("/p.bin"))
    assert as_json.returncode == 0 and plain.returncode == 0, as_json.stderr + plain.stderr
    retrying = [line for line in as_json.stdout.splitlines() if '"event":"retrying"' in line]
    assert retrying and '"wait":3' in retrying[0] and '"retry_at":' in retrying[0]
    assert "trying again in 3 s (the server asked for it)" in plain.stdout


# -- errors name the place that failed -------------------------------------------------------

def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_redirect_to_a_closed_port_names_where_it_led(downloads: Path) -> None:
    closed = _closed_port()

    def answer(request: Request, reply: Reply) -> None:
        reply.send(302, {"Location": f"http://127.0.0.1:{closed}/moved.bin"})

    config = FAST.replace(retries=1)
    with scenario("redirect to a closed port"), HostileServer(answer) as server, \
            manager(config) as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=30)
        assert info.state is State.FAILED
        assert f"127.0.0.1:{closed}" in info.message and "refused" in info.message
        assert f":{server.port}" not in info.message


@pytest.mark.parametrize("size", [1000, SIZE])
def test_a_dead_proxy_is_named_as_the_proxy(downloads: Path, size: int) -> None:
    closed = _closed_port()
    config = FAST.replace(retries=1)
    with scenario("a dead proxy"), manager(config) as m:
        info = m.wait(m.add("http://files.invalid/f.bin", str(downloads),
                            proxy=f"http://127.0.0.1:{closed}"), timeout=30)
        assert info.state is State.FAILED
        assert f"proxy 127.0.0.1:{closed}" in info.message, info.message
        assert "files.invalid refused" not in info.message


def test_one_stream_dropped_midway_starts_again_and_finishes(downloads: Path) -> None:
    """A server without ranges that drops the first answer halfway: the stream starts again
    from the first byte, and the file is right."""

    def answer(request: Request, reply: Reply) -> None:
        reply.head(200, {"Content-Length": str(SIZE)})
        reply.raw(V1[: SIZE // 2] if request.number <= 2 else V1)
        reply.closed = request.number <= 2

    with scenario("one stream dropped midway"), HostileServer(answer) as server, \
            manager() as m:
        info = m.wait(m.add(server.url("/f.bin"), str(downloads)), timeout=30)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V1}
        assert any("starting again from the first byte" in e.message for e in info.errors)
