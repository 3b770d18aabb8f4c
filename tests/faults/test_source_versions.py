"""Every source checks each answer against the version its probe pinned (issue 16, class 1).

S3, GCS and Azure ask for each range with a precondition (If-Match, ifGenerationMatch, an ETag
condition), the Hugging Face hub is read at a commit, and FTP has nothing of the kind. Here the
file is replaced while it downloads, behind something that does not honour the pin; whatever
happens, laden must never end with bytes of two versions in one file: the whole new version
after a restart, or one clear error. Published checksums are switched off (`verify = false`)
so that the end-of-download check cannot hide a mix the version check let through.

How each service is made careless:

* S3 (moto), GCS (fake-gcs-server) and Azure (Azurite) honour their preconditions, so a small
  HTTP relay (`CarelessRelay`) sits in front of each and drops them: the If-* headers and GCS's
  `generation` and `ifGenerationMatch` parameters, as a proxy or cache that rewrites requests
  would. Azure is reached with a SAS, because a Shared Key signature covers If-Match.
* The Hugging Face hub emulator is ours: its `ignore_commits` switch answers a resolve address
  with the branch's newest file, and `ignore_if_range` sends a 206 whatever If-Range says.
* FTP: pyftpdlib reads whatever the file holds when it sends it, so the file is rewritten in
  place (or replaced) while a throttled transfer runs.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from engine.helpers import FAST, manager
from laden.core.errors import RemoteChanged
from laden.core.options import DownloadOptions
from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from laden.sources.versions import Validators, difference, opaque_tag
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer
from servers.hf_hub import HubServer

from .helpers import finished_files, wait_for
from .test_network import scenario

SIZE = 600 * 1024  # several ranges with FAST's 64 KiB segments
V1 = random_bytes(SIZE, seed=161)
V2 = random_bytes(SIZE, seed=162)
LONGER = random_bytes(SIZE + 4096, seed=163)
CARELESS = dataclasses.replace(FAST, verify=False)
"""No published checksum at the end: only the version check stands between laden and a mix."""


# -- a relay that drops preconditions --------------------------------------------------------

PRECONDITION_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                        "if-range")
PRECONDITION_PARAMS = ("generation", "ifGenerationMatch", "ifMetagenerationMatch")


@dataclass(frozen=True)
class Seen:
    """One request the relay forwarded, as the client sent it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names

    @property
    def ranged_get(self) -> bool:
        return self.method == "GET" and ("range" in self.headers or "x-ms-range" in self.headers)


class CarelessRelay:
    """127.0.0.1:port -> an emulator, one request per connection, with every precondition
    removed on the way (headers and GCS query parameters), as a careless proxy would.

    `before(seen)` runs before each request is forwarded, so a test can replace the object
    between the probe and a later range.
    """

    def __init__(self, target: str, before: Callable[[Seen], None] | None = None) -> None:
        parts = urlsplit(target)
        self.target_port = parts.port or 80
        self.target_path = parts.path.rstrip("/")
        self.before = before
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                relay._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.target_path}"

    def __enter__(self) -> CarelessRelay:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def ranged_gets(self) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.ranged_get)

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        line = reader.readline(65536).decode("latin-1")
        if not line.strip():
            return
        method, target, version = line.split()
        headers: list[tuple[str, str]] = []
        while (header := reader.readline(65536).decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = header.partition(":")
            headers.append((name.strip(), value.strip()))
        length = int(dict((k.lower(), v) for k, v in headers).get("content-length") or 0)
        body = reader.read(length) if length else b""
        seen = Seen(method, target, {k.lower(): v for k, v in headers})
        with self._lock:
            self.seen.append(seen)
        if self.before is not None:
            self.before(seen)
        parts = urlsplit(target)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                           if k not in PRECONDITION_PARAMS])
        target = urlunsplit(("", "", parts.path, query, ""))
        kept = [(k, v) for k, v in headers
                if k.lower() not in (*PRECONDITION_HEADERS, "connection")]
        head = "".join(f"{k}: {v}\r\n" for k, v in kept)
        request = f"{method} {target} {version}\r\n{head}Connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            upstream.sendall(request.encode("latin-1") + body)
            answer = upstream.makefile("rb")
            # The answer's head, told to close: one request per connection keeps this simple.
            status = answer.readline(65536)
            lines = [status]
            while (header := answer.readline(65536)) not in (b"\r\n", b"\n", b""):
                if not header.lower().startswith(b"connection:"):
                    lines.append(header)
            client.sendall(b"".join(lines) + b"Connection: close\r\n\r\n")
            while chunk := answer.read1(65536):
                client.sendall(chunk)


# -- one object behind the relay, on each emulator ------------------------------------------


@dataclass
class Careless:
    """One object on an emulator, reached through a `CarelessRelay`."""

    name: str
    url: str
    options: dict[str, Any]
    put: Callable[[bytes], None]
    relay: CarelessRelay
    source_class: type


def _s3(request: pytest.FixtureRequest, relay: CarelessRelay) -> Careless:
    from laden.sources.s3 import S3Source

    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    client = server.client()
    return Careless("s3", f"s3://{bucket}/obj.bin",
                    {"source_settings": {"s3_endpoint_url": relay.url}},
                    lambda data: client.put_object(Bucket=bucket, Key="obj.bin", Body=data),
                    relay, S3Source)


def _gs(request: pytest.FixtureRequest, relay: CarelessRelay) -> Careless:
    from laden.sources.gcs import GcsSource

    server = request.getfixturevalue("gcs_server")
    bucket = request.getfixturevalue("gcs_bucket")
    return Careless("gs", f"gs://{bucket}/obj.bin",
                    {"source_settings": {"gcs_endpoint_url": relay.url}},
                    lambda data: server.upload(bucket, "obj.bin", data), relay, GcsSource)


def _az(request: pytest.FixtureRequest, relay: CarelessRelay) -> Careless:
    from laden.sources.azure import AzureBlobSource

    server = request.getfixturevalue("azurite_server")
    container = request.getfixturevalue("azure_container")
    return Careless("az", f"az://{container}/obj.bin",
                    {"source_settings": {"azure_account_url": relay.url},
                     "secrets": {"azure_sas_token": server.container_sas(container)}},
                    lambda data: server.upload(container, "obj.bin", data), relay,
                    AzureBlobSource)


def _endpoint(request: pytest.FixtureRequest, name: str) -> str:
    if name == "s3":
        return str(request.getfixturevalue("s3_server").endpoint_url)
    if name == "gs":
        return str(request.getfixturevalue("gcs_server").endpoint)
    return str(request.getfixturevalue("azurite_server").account_url)


@pytest.fixture(params=["s3", "gs", "az"])
def careless(request: pytest.FixtureRequest) -> Iterator[Careless]:
    with CarelessRelay(_endpoint(request, request.param)) as relay:
        yield {"s3": _s3, "gs": _gs, "az": _az}[request.param](request, relay)


def _replace_at(target: Careless, data: bytes, *, at: int = 3) -> None:
    """Replace the object once, just before the `at`-th ranged GET reaches the emulator."""
    done = threading.Event()

    def before(seen: Seen) -> None:
        if seen.ranged_get and not done.is_set() and target.relay.ranged_gets() >= at:
            done.set()
            target.put(data)

    target.relay.before = before


def _saved(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in finished_files(folder)}


def _never_mixed(info: DownloadInfo, folder: Path, *versions: bytes) -> None:
    for name, data in _saved(folder).items():
        assert data in versions, f"{name} holds bytes of two versions of the file"
    if info.state is not State.DONE:
        assert info.state is State.FAILED, info.state
        assert "changed" in info.message, info.message
        assert "\n" not in info.message and len(info.message) < 400, info.message


# -- S3, GCS, Azure ---------------------------------------------------------------------------


@pytest.mark.parametrize("new", ["same size", "other size"])
def test_an_object_replaced_mid_download_restarts_whole(careless: Careless, downloads: Path,
                                                        new: str) -> None:
    """The object is replaced after the first ranges and the relay drops the precondition:
    the next answer is of the new version, so laden starts again and saves only that one."""
    replacement = V2 if new == "same size" else LONGER
    with scenario(f"{careless.name}: object replaced, precondition ignored ({new})"):
        careless.put(V1)
        _replace_at(careless, replacement)
        with manager(CARELESS) as m:
            info = m.wait(m.add(careless.url, str(downloads), connections=4,
                                **careless.options), timeout=90)
        assert careless.relay.ranged_gets() > 3, "the download was not made of several ranges"
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"obj.bin": replacement}
        assert any("changed" in e.message for e in info.errors), info.errors


def test_an_object_that_never_settles_fails_without_a_mixed_file(careless: Careless,
                                                                 downloads: Path) -> None:
    """A new version every two ranges: no attempt can finish with one version, so laden
    gives up with one clear line and leaves no file under the final name that mixes two."""
    with scenario(f"{careless.name}: a new version every two ranges"):
        careless.put(V1)
        lock = threading.Lock()
        count = [0]

        def before(seen: Seen) -> None:
            if seen.ranged_get:
                with lock:
                    count[0] += 1
                    if count[0] % 2 == 0:
                        careless.put(V2 if count[0] % 4 == 0 else V1)

        careless.relay.before = before
        with manager(CARELESS) as m:
            info = m.wait(m.add(careless.url, str(downloads), connections=4,
                                **careless.options), timeout=90)
        assert count[0] >= 4, "the object was not replaced while it downloaded"
        _never_mixed(info, downloads, V1, V2)


def test_a_range_of_another_version_is_refused_and_an_unchanged_one_read(
    careless: Careless,
) -> None:
    """At the source: after a replacement the answer's validators differ, which is a
    RemoteChanged with one short line (no SAS in it); without one, the bytes come through."""
    with scenario(f"{careless.name}: range of another version refused at the source"):
        careless.put(V1)
        source = careless.source_class(CARELESS)
        options = DownloadOptions(**careless.options)
        try:
            remote = source.probe(careless.url, options)
            assert _read(source, remote, options, 1000, 5000) == V1[1000:5000]
            careless.put(V2)
            with pytest.raises(RemoteChanged) as caught:
                _read(source, remote, options, 5000, 9000)
        finally:
            source.close()
        message = str(caught.value)
        assert "changed" in message and "\n" not in message and len(message) < 300
        assert "sig=" not in message.lower()


def _read(source: Any, remote: Any, options: DownloadOptions, start: int, end: int) -> bytes:
    reader = source.open_range(remote, start, end, options)
    try:
        buffer = bytearray(end - start)
        view, got = memoryview(buffer), 0
        while got < len(buffer) and (n := reader.readinto(view[got:])):
            got += n
        return bytes(buffer[:got])
    finally:
        reader.close()


# -- the comparison itself ---------------------------------------------------------------------


@pytest.mark.parametrize("pinned, answer", [
    ('"abc"', 'W/"abc"'), ("abc", '"abc"'), ('W/"abc"', "abc"), (' "abc" ', '"abc"'),
])
def test_one_tag_in_its_several_spellings_is_one_version(pinned: str, answer: str) -> None:
    """SDKs and proxies add and drop quotes and the weakness flag: never a reason to restart."""
    assert opaque_tag(pinned) == opaque_tag(answer) == "abc"
    assert difference(Validators(size=10, etag=pinned), Validators(size=10, etag=answer)) is None


def test_each_validator_the_answer_carries_must_match() -> None:
    pinned = Validators(size=10, etag='"a"', version="7", modified="Tue, 01 Dec 2026 10:00:00 GMT",
                        digests=(("md5", "00ff"),))
    for answer in (Validators(size=11), Validators(etag='"b"'), Validators(version="8"),
                   Validators(digests=(("md5", "11ee"),))):
        assert difference(pinned, answer), answer
    # What the answer leaves out proves nothing; an equal date in another spelling is equal.
    assert difference(pinned, Validators()) is None
    dated = Validators(modified="Tue, 01 Dec 2026 10:00:00 GMT")
    assert difference(dated, Validators(modified="Tue, 01 Dec 2026 10:00:00 +0000")) is None
    assert difference(dated, Validators(modified="Tue, 01 Dec 2026 10:00:01 GMT"))


def test_a_hostile_validator_makes_a_short_message() -> None:
    reason = difference(Validators(etag='"a"'), Validators(etag='"' + "\x1b[31m" * 5000 + '"'))
    assert reason is not None and len(reason) < 200 and "\x1b" not in reason


# -- Hugging Face -----------------------------------------------------------------------------


@pytest.fixture
def hub() -> Iterator[HubServer]:
    """A hub of this test's own: its switches must not reach other tests."""
    with HubServer() as server:
        yield server


@pytest.mark.parametrize("honours_if_range", [True, False], ids=["if-range", "no-if-range"])
def test_a_hub_that_ignores_the_commit_never_mixes_versions(
    hub: HubServer, downloads: Path, honours_if_range: bool
) -> None:
    """A file the hub serves itself, read at the probed commit; the hub answers with the
    newest file instead, and the file changes after the first ranges. Its ETag gives it away,
    in the 200 an honoured If-Range brings and in a 206 that ignores it."""
    if_range = "honours" if honours_if_range else "ignores"
    with scenario(f"a hub that ignores the commit ({if_range} If-Range)"):
        repo = "org/versions"
        hub.add_repo(repo, {"model.bin": V1}, lfs_threshold=10 * SIZE)  # served by the hub
        hub.ignore_commits = True
        hub.ignore_if_range = not honours_if_range
        ranged = [0]

        def before(seen: Any) -> None:
            if seen.method == "GET" and "range" in seen.headers:
                ranged[0] += 1
                if ranged[0] == 3:
                    hub.set_file(repo, "model.bin", V2)

        hub.before_resolve = before
        with manager(CARELESS) as m:
            info = m.wait(m.add(f"hf://{repo}/model.bin", str(downloads), connections=4,
                                source_settings={"hf_endpoint": hub.endpoint}), timeout=90)
        assert ranged[0] > 3
        _never_mixed(info, downloads, V2)
        assert info.state is State.DONE, info.message
        assert any("changed" in e.message for e in info.errors), info.errors


# -- FTP --------------------------------------------------------------------------------------

T0 = 1_700_000_000  # the first version's modification time; the second is a minute later


@pytest.fixture
def slow_ftp() -> Iterator[FTPTestServer]:
    """An FTP server that sends 600 KB/s per transfer, so a file can change mid-transfer."""
    with FTPTestServer(download_limit=600_000) as server:
        yield server


def _ftp_download(server: FTPTestServer, downloads: Path, connections: int,
                  change: Callable[[], None]) -> DownloadInfo:
    server.write_file("f.bin", V1)
    server.set_mtime("f.bin", T0)
    with manager(CARELESS) as m:
        download = m.add(f"{server.url}/f.bin", str(downloads), connections=connections)
        wait_for(lambda: m.get(download).done >= SIZE // 4, timeout=30,
                 what="a quarter of the file")
        change()
        return m.wait(download, timeout=90)


def test_an_ftp_file_rewritten_during_its_last_range_is_not_saved_mixed(
    slow_ftp: FTPTestServer, downloads: Path
) -> None:
    """One connection, one RETR: the file is rewritten in place while it is sent, so the
    range itself holds both versions and no later range would notice. SIZE and MDTM asked
    again after the RETR do."""
    with scenario("FTP file rewritten in place during the last range"):
        def rewrite() -> None:
            with open(slow_ftp.path("f.bin"), "r+b") as handle:
                handle.write(V2)
            slow_ftp.set_mtime("f.bin", T0 + 60)

        info = _ftp_download(slow_ftp, downloads, 1, rewrite)
        _never_mixed(info, downloads, V2)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": V2}
        assert any("changed" in e.message for e in info.errors), info.errors


def test_an_ftp_file_replaced_between_ranges_restarts_whole(
    slow_ftp: FTPTestServer, downloads: Path
) -> None:
    """Several connections; the file is replaced by a new one of another size (a rename, so
    transfers under way keep reading the old one): the next range's SIZE and MDTM show it."""
    with scenario("FTP file replaced between ranges"):
        def replace() -> None:
            fresh = slow_ftp.write_file("f.bin.new", LONGER)
            os.utime(fresh, (T0 + 60, T0 + 60))
            os.replace(fresh, slow_ftp.path("f.bin"))

        info = _ftp_download(slow_ftp, downloads, 4, replace)
        _never_mixed(info, downloads, LONGER)
        assert info.state is State.DONE, info.message
        assert _saved(downloads) == {"f.bin": LONGER}
        assert any("changed" in e.message for e in info.errors), info.errors

