"""Tests of the test file server itself, with stdlib clients only (http.client, urllib)."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from .faults import Faults
from .fixtures import http_server, random_bytes, wait_for  # noqa: F401  (http_server is a fixture)
from .http_server import FileServer
from .http_util import RangeNotSatisfiable, parse_range

DATA = random_bytes(10_000, seed=1)


class Response:
    def __init__(self, raw: http.client.HTTPResponse, body: bytes) -> None:
        self.status = raw.status
        self.headers = raw.headers
        self.body = body


def request(
    conn: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    conn.request(method, path, body=body, headers=headers or {})
    raw = conn.getresponse()
    return Response(raw, raw.read())


@pytest.fixture
def server(http_server: FileServer) -> FileServer:  # noqa: F811
    http_server.add_file("/f", DATA)
    return http_server


@pytest.fixture
def conn(server: FileServer) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    yield connection
    connection.close()


@pytest.fixture
def new_conn(server: FileServer) -> Iterator[Callable[[], http.client.HTTPConnection]]:
    """Opens extra connections to `server`; all closed when the test ends."""
    opened: list[http.client.HTTPConnection] = []

    def open_one() -> http.client.HTTPConnection:
        opened.append(http.client.HTTPConnection("127.0.0.1", server.port, timeout=5))
        return opened[-1]

    yield open_one
    for connection in opened:
        connection.close()


# -- plain serving ---------------------------------------------------------------------------


def test_full_get(server: FileServer, conn: http.client.HTTPConnection) -> None:
    r = request(conn, "/f")
    assert r.status == 200
    assert r.body == DATA
    assert r.headers["Content-Length"] == str(len(DATA))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'
    assert r.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert server.base_url == f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=0-0", 0, 1),
        ("bytes=9000-", 9000, 10_000),
        ("bytes=-100", 9900, 10_000),
        ("bytes=-20000", 0, 10_000),
        ("bytes=9990-20000", 9990, 10_000),
    ],
)
def test_range(conn: http.client.HTTPConnection, header: str, start: int, stop: int) -> None:
    r = request(conn, "/f", {"Range": header})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/10000"
    assert r.headers["Content-Length"] == str(stop - start)
    assert r.body == DATA[start:stop]


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=5-2", "items=0-1", "bytes=-"])
def test_ignored_range_gives_full_body(conn: http.client.HTTPConnection, header: str) -> None:
    r = request(conn, "/f", {"Range": header})
    assert (r.status, r.body) == (200, DATA)


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable_range(conn: http.client.HTTPConnection, header: str) -> None:
    r = request(conn, "/f", {"Range": header})
    assert r.status == 416
    assert r.headers["Content-Range"] == "bytes */10000"
    # The connection stays usable after an error answer.
    assert request(conn, "/f", {"Range": "bytes=0-9"}).body == DATA[:10]


def test_parse_range_edge_cases() -> None:
    assert parse_range("bytes=0-", 1) == (0, 1)
    assert parse_range(" BYTES=2-3 ", 10) == (2, 4)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-5", 0)


def test_keep_alive_across_many_ranged_requests(
    server: FileServer, conn: http.client.HTTPConnection
) -> None:
    for i in range(200):
        start = (i * 37) % 9000
        stop = start + 1 + (i * 13) % 1000
        r = request(conn, "/f", {"Range": f"bytes={start}-{stop - 1}"})
        assert (r.status, r.body) == (206, DATA[start:stop])
    ranged = server.ranged_requests("/f")
    assert len(ranged) == 200
    assert len({record.client_port for record in ranged}) == 1  # one connection throughout


def test_request_body_is_discarded(conn: http.client.HTTPConnection) -> None:
    r = request(conn, "/f", {"Range": "bytes=0-4"}, body=b"x" * 5000)
    assert r.body == DATA[:5]
    assert request(conn, "/f", {"Range": "bytes=5-9"}).body == DATA[5:10]


def test_head(conn: http.client.HTTPConnection) -> None:
    r = request(conn, "/f", method="HEAD")
    assert (r.status, r.body) == (200, b"")
    assert r.headers["Content-Length"] == "10000"
    r = request(conn, "/f", {"Range": "bytes=0-9"}, method="HEAD")
    assert (r.status, r.headers["Content-Range"], r.body) == (206, "bytes 0-9/10000", b"")
    assert request(conn, "/f").body == DATA


def test_unknown_path_404(conn: http.client.HTTPConnection) -> None:
    assert request(conn, "/nope").status == 404
    assert request(conn, "/f").status == 200


def test_headers_as_given(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.add_file(
        "/g",
        b"abc",
        etag='W/"weak"',
        last_modified=0,
        content_disposition="attachment; filename*=UTF-8''na%C3%AFve.bin",
        content_type="text/plain",
        headers={"Repr-Digest": "sha-256=:abc=:", "Content-MD5": "kAFQmDzST7DWlj99KOF/cg=="},
    )
    r = request(conn, "/g")
    assert r.headers["ETag"] == 'W/"weak"'
    assert r.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert r.headers["Content-Disposition"] == "attachment; filename*=UTF-8''na%C3%AFve.bin"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["Repr-Digest"] == "sha-256=:abc=:"
    assert r.headers["Content-MD5"] == "kAFQmDzST7DWlj99KOF/cg=="


def test_paths_match_percent_decoded(server: FileServer, conn: http.client.HTTPConnection) -> None:
    url = server.add_file("/dir/naïve file.bin", b"abc")
    assert url == server.base_url + "/dir/na%C3%AFve%20file.bin"
    assert request(conn, "/dir/na%C3%AFve%20file.bin", {"Range": "bytes=1-"}).body == b"bc"
    assert server.add_file("/a%20b", b"x") == server.base_url + "/a%20b"  # not encoded twice
    assert request(conn, "/a%20b").body == b"x"
    assert len(server.ranged_requests("/dir/naïve file.bin")) == 1
    assert "/dir/naïve file.bin" in server.max_concurrent


# -- validators ------------------------------------------------------------------------------


def test_if_range(server: FileServer, conn: http.client.HTTPConnection) -> None:
    etag = request(conn, "/f", method="HEAD").headers["ETag"]
    date = "Tue, 14 Nov 2023 22:13:20 GMT"
    ranged = {"Range": "bytes=0-9"}
    assert request(conn, "/f", {**ranged, "If-Range": etag}).status == 206
    assert request(conn, "/f", {**ranged, "If-Range": date}).status == 206
    assert request(conn, "/f", {**ranged, "If-Range": '"other"'}).status == 200
    assert request(conn, "/f", {**ranged, "If-Range": "W/" + etag}).status == 200
    assert request(conn, "/f", {**ranged, "If-Range": "Tue, 14 Nov 2023 22:13:21 GMT"}).body == DATA


def test_if_match_and_if_none_match(conn: http.client.HTTPConnection) -> None:
    etag = request(conn, "/f", method="HEAD").headers["ETag"]
    assert request(conn, "/f", {"If-Match": '"other"'}).status == 412
    assert request(conn, "/f", {"If-Match": f'"x", {etag}'}).status == 200
    r = request(conn, "/f", {"If-None-Match": etag})
    assert (r.status, r.body, r.headers["ETag"]) == (304, b"", etag)
    assert request(conn, "/f").status == 200


def test_set_content_changes_validators(
    server: FileServer, conn: http.client.HTTPConnection
) -> None:
    old = request(conn, "/f", method="HEAD").headers
    server.set_content("/f", DATA)  # same bytes, still a new version
    same_bytes = request(conn, "/f", method="HEAD").headers
    assert same_bytes["ETag"] != old["ETag"]
    assert same_bytes["Last-Modified"] != old["Last-Modified"]
    new_data = random_bytes(5000, seed=2)
    server.set_content("/f", new_data)
    r = request(conn, "/f", {"Range": "bytes=0-9", "If-Range": old["ETag"]})
    assert (r.status, r.body) == (200, new_data)
    server.set_content("/f", new_data, etag='"chosen"')
    assert request(conn, "/f", method="HEAD").headers["ETag"] == '"chosen"'


# -- auth and redirects ----------------------------------------------------------------------


def test_require_auth(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.require_auth("/f", "Bearer secret")
    r = request(conn, "/f")
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="test"'
    assert request(conn, "/f", {"Authorization": "Bearer wrong"}).status == 401
    assert request(conn, "/f", {"Authorization": "Bearer secret"}).body == DATA


def test_redirect(server: FileServer, conn: http.client.HTTPConnection) -> None:
    url = server.add_redirect("/r", "/f", 301, times=1)
    assert url == server.base_url + "/r"
    r = request(conn, "/r")
    assert (r.status, r.headers["Location"]) == (301, "/f")
    assert request(conn, "/r").status == 404  # used up
    absolute = server.add_redirect("/abs", server.base_url + "/f")
    with urllib.request.urlopen(absolute, timeout=5) as followed:
        assert followed.read() == DATA


def test_signed_redirect(server: FileServer, conn: http.client.HTTPConnection) -> None:
    url = server.add_signed_redirect("/s", "/f", expire_after_requests=2)
    first = request(conn, "/s").headers["Location"]
    second = request(conn, "/s").headers["Location"]
    assert first.startswith(server.base_url + "/f?token=")
    assert first != second
    target = first.removeprefix(server.base_url)
    assert request(conn, target, {"Range": "bytes=0-9"}).body == DATA[:10]
    assert request(conn, target, {"Range": "bytes=10-19"}).body == DATA[10:20]
    assert request(conn, target, {"Range": "bytes=20-29"}).status == 403  # expired
    assert request(conn, second.removeprefix(server.base_url)).status == 200
    assert request(conn, "/f").status == 403  # no token
    assert request(conn, "/f?token=999").status == 403  # never handed out
    with urllib.request.urlopen(url, timeout=5) as followed:
        assert followed.read() == DATA


# -- faults ----------------------------------------------------------------------------------


def test_ignore_range(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(ignore_range=True))
    r = request(conn, "/f", {"Range": "bytes=0-9"})
    assert (r.status, r.body) == (200, DATA)
    assert "Accept-Ranges" not in r.headers


def read_partial(
    connection: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> bytes:
    """GET that is expected to be cut short; returns what arrived."""
    connection.request("GET", path, headers=headers or {})
    with pytest.raises(http.client.IncompleteRead) as info:
        connection.getresponse().read()
    connection.close()
    return info.value.partial


def test_drop_after(server: FileServer, new_conn: Callable[[], http.client.HTTPConnection]) -> None:
    server.set_faults("/f", Faults(drop_after=100))
    assert read_partial(new_conn(), "/f") == DATA[:100]
    assert read_partial(new_conn(), "/f", {"Range": "bytes=1000-"}) == DATA[1000:1100]
    connection = new_conn()
    assert request(connection, "/f", {"Range": "bytes=0-99"}).body == DATA[:100]  # not longer


def test_drop_every_other_and_drop_times(
    server: FileServer, new_conn: Callable[[], http.client.HTTPConnection]
) -> None:
    server.set_faults("/f", Faults(drop_after=10, drop_every_other=True))
    assert read_partial(new_conn(), "/f") == DATA[:10]
    assert request(new_conn(), "/f").body == DATA
    assert request(new_conn(), "/f", method="HEAD").status == 200  # HEADs don't count
    assert read_partial(new_conn(), "/f") == DATA[:10]
    server.set_faults("/f", Faults(drop_after=10, drop_times=1))
    assert read_partial(new_conn(), "/f") == DATA[:10]
    assert request(new_conn(), "/f").body == DATA
    assert request(new_conn(), "/f").body == DATA


def test_status_sequence(server: FileServer, conn: http.client.HTTPConnection) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    server.set_faults(
        "/f", Faults(status_sequence=[(503, {"Retry-After": "1"}), (429, {"Retry-After": date})])
    )
    first = request(conn, "/f", {"Range": "bytes=0-9"})
    assert (first.status, first.headers["Retry-After"]) == (503, "1")
    second = request(conn, "/f", {"Range": "bytes=0-9"})
    assert (second.status, second.headers["Retry-After"]) == (429, date)
    assert request(conn, "/f", {"Range": "bytes=0-9"}).body == DATA[:10]


def test_rate_per_connection(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(rate_per_connection=40_000))
    started = time.monotonic()
    assert request(conn, "/f").body == DATA
    assert 0.2 <= time.monotonic() - started < 1.5  # 10 kB at 40 kB/s = 0.25 s


def test_no_content_length(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(no_content_length=True))
    r = request(conn, "/f", {"Range": "bytes=0-99"})
    assert (r.status, r.body) == (206, DATA[:100])
    assert "Content-Length" not in r.headers
    assert r.headers["Connection"] == "close"


def test_chunked(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(chunked=True))
    r = request(conn, "/f")
    assert (r.status, r.headers["Transfer-Encoding"], r.body) == (200, "chunked", DATA)
    assert "Content-Length" not in r.headers
    assert request(conn, "/f", {"Range": "bytes=5-9"}).body == DATA[5:10]  # still keep-alive


def test_gzip(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(gzip=True))
    r = request(conn, "/f")
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.body) == DATA
    assert r.headers["Content-Length"] == str(len(r.body))
    r = request(conn, "/f", {"Range": "bytes=100-199"})
    assert (r.status, r.headers["Content-Range"]) == (206, "bytes 100-199/10000")
    assert gzip.decompress(r.body) == DATA[100:200]


def test_stall(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(stall_after=100, stall_seconds=0.3, stall_times=1))
    conn.request("GET", "/f")
    response = conn.getresponse()
    assert response.read(100) == DATA[:100]
    started = time.monotonic()
    assert response.read() == DATA[100:]
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    assert request(conn, "/f").body == DATA
    assert time.monotonic() - started < 0.2  # stall_times used up


def test_wrong_content_range(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(wrong_content_range=True))
    r = request(conn, "/f", {"Range": "bytes=10-19"})
    assert (r.headers["Content-Range"], r.body) == ("bytes 11-19/10000", DATA[10:20])


def test_extra_bytes(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(extra_bytes=5))
    r = request(conn, "/f", {"Range": "bytes=10-19"})
    assert (r.headers["Content-Range"], r.body) == ("bytes 10-19/10000", DATA[10:25])
    assert request(conn, "/f", {"Range": "bytes=-3"}).body == DATA[-3:] + bytes(5)
    assert request(conn, "/f").body == DATA  # only 206 answers grow


def test_short_bytes(
    server: FileServer, new_conn: Callable[[], http.client.HTTPConnection]
) -> None:
    server.set_faults("/f", Faults(short_bytes=7))
    assert read_partial(new_conn(), "/f", {"Range": "bytes=0-99"}) == DATA[:93]


def test_change_etag_every_request(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(change_etag_every_request=True))
    first = request(conn, "/f", method="HEAD").headers["ETag"]
    second = request(conn, "/f", method="HEAD").headers["ETag"]
    assert first != second
    r = request(conn, "/f", {"Range": "bytes=0-9", "If-Range": second})
    assert (r.status, r.body) == (200, DATA)


def test_max_connections_and_max_concurrent(
    server: FileServer, new_conn: Callable[[], http.client.HTTPConnection]
) -> None:
    server.set_faults(
        "/f", Faults(max_connections=1, stall_after=0, stall_seconds=0.3, stall_times=1)
    )
    slow = new_conn()
    slow.request("GET", "/f")
    slow_response = slow.getresponse()  # headers are out; the body is stalled: in flight
    assert request(new_conn(), "/f").status == 403
    assert slow_response.read() == DATA
    # Nothing in flight any more, once the server's thread has let go of the finished request
    # (it may still be doing so when the client has read the last byte).
    wait_for(lambda: request(new_conn(), "/f").status == 200, what="a request let through")
    assert server.max_concurrent["/f"] == 2
    server.clear_log()
    assert server.requests == []
    assert server.max_concurrent == {}


def test_full_body_after_requests(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(full_body_after_requests=2))
    assert request(conn, "/f", {"Range": "bytes=0-9"}).status == 206
    assert request(conn, "/f", {"Range": "bytes=0-9"}).status == 206
    r = request(conn, "/f", {"Range": "bytes=0-9"})
    assert (r.status, r.body) == (200, DATA)


def test_head_not_allowed(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(head_not_allowed=True))
    assert request(conn, "/f", method="HEAD").status == 405
    assert request(conn, "/f").body == DATA


def test_no_etag(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(no_etag=True))
    r = request(conn, "/f", {"Range": "bytes=0-9", "If-Range": "Tue, 14 Nov 2023 22:13:20 GMT"})
    assert "ETag" not in r.headers
    assert "Last-Modified" not in r.headers
    assert (r.status, r.body) == (200, DATA)


def test_expire_after_requests(server: FileServer, conn: http.client.HTTPConnection) -> None:
    server.set_faults("/f", Faults(expire_after_requests=2))
    assert request(conn, "/f", method="HEAD").status == 200
    assert request(conn, "/f").status == 200
    assert request(conn, "/f").status == 403


def test_faults_can_change_live(server: FileServer, conn: http.client.HTTPConnection) -> None:
    faults = Faults()
    server.set_faults("/f", faults)
    assert request(conn, "/f", {"Range": "bytes=0-9"}).status == 206
    faults.ignore_range = True
    assert request(conn, "/f", {"Range": "bytes=0-9"}).status == 200


# -- request log -----------------------------------------------------------------------------


def test_request_log(server: FileServer, conn: http.client.HTTPConnection) -> None:
    request(conn, "/f", {"Range": "bytes=0-9", "X-Test": "1"})
    request(conn, "/f", method="HEAD")
    request(conn, "/missing")
    [ranged] = server.ranged_requests("/f")
    assert (ranged.method, ranged.path, ranged.status, ranged.range) == (
        "GET",
        "/f",
        206,
        "bytes=0-9",
    )
    assert ranged.headers["x-test"] == "1"
    assert ranged.client_port == conn.sock.getsockname()[1]
    assert [r.status for r in server.requests] == [206, 200, 404]


def test_concurrent_parts_of_a_large_file(
    server: FileServer, new_conn: Callable[[], http.client.HTTPConnection]
) -> None:
    data = random_bytes(64 << 20, seed=3)
    server.add_file("/big", data)
    parts = 4
    size = len(data) // parts
    results: dict[int, bytes] = {}
    barrier = threading.Barrier(parts)

    def fetch(i: int) -> None:
        connection = new_conn()
        connection.request(
            "GET", "/big", headers={"Range": f"bytes={i * size}-{(i + 1) * size - 1}"}
        )
        response = connection.getresponse()
        barrier.wait()  # all four are in flight at once
        results[i] = response.read()
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert b"".join(results[i] for i in range(parts)) == data
    assert server.max_concurrent["/big"] == parts
    assert time.monotonic() - started < 3


# -- TLS and shutdown ------------------------------------------------------------------------


def test_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client_context = ssl.create_default_context(cafile=str(ca_file))
    with FileServer(ssl_context=server_context) as tls_server:
        assert tls_server.base_url.startswith("https://127.0.0.1:")
        tls_server.add_file("/f", DATA)
        connection = http.client.HTTPSConnection(
            "127.0.0.1", tls_server.port, context=client_context, timeout=5
        )
        assert request(connection, "/f", {"Range": "bytes=5-9"}).body == DATA[5:10]
        assert request(connection, "/f").body == DATA
        connection.close()
        # A client that does not trust the CA fails the handshake; the server carries on.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(tls_server.base_url + "/f", timeout=5)
        with urllib.request.urlopen(
            tls_server.base_url + "/f", timeout=5, context=client_context
        ) as r:
            assert r.read() == DATA


def test_stop_is_quick_with_stalled_and_idle_connections() -> None:
    threads_before = set(threading.enumerate())
    server = FileServer()
    server.start()
    server.add_file("/f", DATA, faults=Faults(stall_after=10, stall_seconds=60))
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    request(idle, "/missing")  # leaves an idle keep-alive connection behind
    stalled = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    stalled.request("GET", "/f")
    response = stalled.getresponse()
    assert response.read(10) == DATA[:10]
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises((http.client.IncompleteRead, OSError)):
        response.read()
    server.stop()  # idempotent
    assert not [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    idle.close()
    stalled.close()


def test_random_bytes() -> None:
    assert random_bytes(100) == random_bytes(100, seed=0)
    assert random_bytes(100, seed=1) != random_bytes(100)
    assert random_bytes(1000)[:100] == random_bytes(100)
    assert len(random_bytes(0)) == 0
