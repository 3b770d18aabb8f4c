"""The request handler of the test file server (http_server.py).

The handler keeps no state of its own: files, counters and the request log live on the
owning FileServer and are read and updated under its lock.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from laden.sources.http import PROBE_BODY, PROBE_RANGE

from .faults import Faults, RequestRecord
from .http_util import (
    RangeNotSatisfiable,
    etag_list,
    hard_shutdown,
    http_date,
    if_range_matches,
    parse_range,
    path_key,
    strong_match,
    weak_match,
    with_etag_suffix,
)

if TYPE_CHECKING:
    from .http_server import FileServer

WRITE_CHUNK = 1 << 20  # large writes keep the per-syscall overhead negligible
PACED_CHUNK = 16 << 10  # small enough that rate-capped bodies flow smoothly


@dataclass
class ServedFile:
    path: str  # as given to add_file
    data: bytes
    etag: str
    last_modified: float
    content_type: str
    content_disposition: str | None
    headers: dict[str, str]
    faults: Faults
    # Counters behind the fault switches (see Faults); reset by set_faults.
    requests: int = 0
    gets: int = 0
    drops: int = 0
    stalls: int = 0
    etag_serial: int = 0
    # The handlers answering this file right now (and whether each is a GET), never reset.
    # Counted by open connection, see live_counts.
    serving: dict[object, bool] = field(default_factory=dict)

    def live_counts(self) -> tuple[int, int]:
        """Requests and GETs in flight whose client is still connected.

        A client that closes a response mid-body (laden does, when a split shortens a
        segment) is only noticed by its handler at the next paced write; counting that
        handler would report one connection more than the client holds.
        """
        live = [is_get for handler, is_get in self.serving.items()
                if not _peer_closed(handler.connection)]  # type: ignore[attr-defined]
        return len(live), sum(live)

    def reset_counters(self) -> None:
        self.requests = self.gets = self.drops = self.stalls = self.etag_serial = 0


def _peer_closed(sock: socket.socket) -> bool:
    """True once the client has closed its end (a zero-byte peek), without consuming data."""
    try:
        # socket.socket.recv, not the SSLSocket override (which refuses flags): a TLS
        # client's FIN shows as a zero-byte peek at the raw socket just the same.
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@dataclass
class _BodyPlan:
    """How to send one response body, with the faults that fire on the way."""

    body: memoryview
    send: int  # bytes to write before stopping
    cut: bool  # shut the connection after `send` bytes (drop / short body)
    stall_at: int | None
    stall_seconds: float
    rate: int | None
    chunked: bool


class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    @property
    def owner(self) -> FileServer:
        return self.server.owner  # type: ignore[attr-defined]

    def setup(self) -> None:
        self.owner._register(self.request)
        try:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.do_handshake()
            # Headers and short error bodies go out at once instead of waiting on Nagle.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()
        except BaseException:
            self.owner._unregister(self.request)
            raise

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.owner._unregister(self.request)

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read FileServer.requests instead

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    # -- routing ---------------------------------------------------------------------------

    def _handle(self, head: bool) -> None:
        try:
            self._discard_request_body()
            self._route(head)
        except OSError:
            # The client went away, or a fault or stop() cut the connection.
            self.close_connection = True

    def _discard_request_body(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # request chunking is not decoded; don't desync
            return
        try:
            remaining = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)

    def _route(self, head: bool) -> None:
        owner = self.owner
        target = urlsplit(self.path)
        path = path_key(target.path)
        with owner._lock:
            expected_auth = owner._auth.get(path)
            entry = owner._files.get(path)
        if expected_auth is not None and self.headers.get("Authorization") != expected_auth:
            self._send_simple(401, {"WWW-Authenticate": 'Basic realm="test"'}, head)
            return
        redirect = owner._take_redirect(path)
        if redirect is not None:
            self._send_simple(redirect[0], {"Location": redirect[1]}, head)
            return
        if entry is None:
            self._send_simple(404, {}, head)
            return
        if not owner._token_ok(path, target.query):
            self._send_simple(403, {}, head)
            return
        with owner._lock:
            entry.requests += 1
            entry.serving[self] = not head
            nth = entry.requests
            in_flight, gets_in_flight = entry.live_counts()
            nth_get = 0
            if not head:
                entry.gets += 1
                nth_get = entry.gets
                seen = owner.max_concurrent.get(entry.path, 0)
                owner.max_concurrent[entry.path] = max(seen, gets_in_flight)
        try:
            self._serve_file(entry, head, nth, nth_get, in_flight)
        finally:
            with owner._lock:
                del entry.serving[self]

    # -- the file --------------------------------------------------------------------------

    def _serve_file(
        self, entry: ServedFile, head: bool, nth: int, nth_get: int, in_flight: int
    ) -> None:
        f = entry.faults
        if head and f.head_not_allowed:
            self._send_simple(405, {"Allow": "GET"}, head)
            return
        if f.max_connections is not None and in_flight > f.max_connections:
            self._send_simple(403, {}, head)
            return
        with self.owner._lock:
            canned = f.status_sequence.pop(0) if f.status_sequence else None
            data, etag, last_modified = entry.data, entry.etag, entry.last_modified
            if f.change_etag_every_request or f.change_every_request:
                entry.etag_serial += 1
                etag = with_etag_suffix(etag, f"r{entry.etag_serial}")
            if f.change_every_request:
                last_modified += entry.etag_serial
        if canned is not None:
            self._send_simple(canned[0], canned[1], head)
            return
        if f.expire_after_requests is not None and nth > f.expire_after_requests:
            self._send_simple(403, {}, head)
            return

        validators: dict[str, str] = {}
        if f.no_etag:
            etag_or_none: str | None = None
            modified_or_none: float | None = None
        else:
            etag_or_none, modified_or_none = etag, last_modified
            validators = {"ETag": etag, "Last-Modified": http_date(last_modified)}
        if not self._preconditions_pass(etag_or_none, validators, head):
            return

        total = len(data)
        span: tuple[int, int] | None = None
        range_header = self.headers.get("Range")
        honour_range = not f.ignore_range and (
            f.full_body_after_requests is None or nth <= f.full_body_after_requests
        )
        if_range = self.headers.get("If-Range")
        if (
            range_header is not None
            and honour_range
            and (if_range is None or if_range_matches(if_range, etag_or_none, modified_or_none))
        ):
            try:
                span = parse_range(range_header, total)
            except RangeNotSatisfiable:
                self._send_simple(416, {"Content-Range": f"bytes */{total}", **validators}, head)
                return

        headers = [("Content-Type", entry.content_type), *validators.items()]
        if entry.content_disposition is not None:
            headers.append(("Content-Disposition", entry.content_disposition))
        if not f.ignore_range:
            headers.append(("Accept-Ranges", "bytes"))
        headers.extend(entry.headers.items())

        view = memoryview(data)
        if span is None:
            status, body = 200, view
        else:
            start, stop = span
            status = 206
            end = stop + f.extra_bytes
            body = view[start : min(end, total)]
            if end > total:  # asked for extra bytes past the end: pad them
                body = memoryview(bytes(body) + bytes(end - total))
            first = start + 1 if f.wrong_content_range else start
            headers.append(("Content-Range", f"bytes {first}-{stop - 1}/{total}"))
        if f.gzip:
            body = memoryview(gzip.compress(body, compresslevel=1, mtime=0))
            headers.append(("Content-Encoding", "gzip"))
        length = len(body)
        if f.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif f.no_content_length:
            headers.append(("Connection", "close"))  # send_header also sets close_connection
        else:
            headers.append(("Content-Length", str(length)))

        self._start_response(status, headers)
        if not head:
            # laden's probe asks for the first PROBE_BODY bytes and reads them only when they
            # are the whole file; otherwise it hangs up after the headers. A drop or stall
            # planned for a body nobody reads would be used up without being seen.
            unread = range_header == PROBE_RANGE and span is not None and total > PROBE_BODY
            self._write_body(self._plan_body(entry, body, nth_get, spare_faults=unread))

    def _preconditions_pass(self, etag: str | None, validators: dict[str, str], head: bool) -> bool:
        if_match = self.headers.get("If-Match")
        if (
            if_match is not None
            and if_match.strip() != "*"
            and not any(strong_match(tag, etag) for tag in etag_list(if_match))
        ):
            self._send_simple(412, validators, head)
            return False
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None and (
            if_none_match.strip() == "*"
            or any(weak_match(tag, etag) for tag in etag_list(if_none_match))
        ):
            self._start_response(304, list(validators.items()))
            return False
        return True

    def _plan_body(self, entry: ServedFile, body: memoryview, nth_get: int, *,
                   spare_faults: bool = False) -> _BodyPlan:
        f = entry.faults
        length = len(body)
        send, cut = length, False
        if f.short_bytes > 0:
            send, cut = max(0, length - f.short_bytes), True
        stall_at = None
        with self.owner._lock:
            if spare_faults:
                pass
            elif (
                f.drop_after is not None
                and f.drop_after < length
                and (not f.drop_every_other or nth_get % 2 == 1)
                and (f.drop_times is None or entry.drops < f.drop_times)
            ):
                entry.drops += 1
                send, cut = min(send, f.drop_after), True
            if (
                not spare_faults
                and f.stall_after is not None
                and f.stall_after < length
                and f.stall_after <= send
                and (f.stall_times is None or entry.stalls < f.stall_times)
            ):
                entry.stalls += 1
                stall_at = f.stall_after
        return _BodyPlan(
            body=body,
            send=send,
            cut=cut,
            stall_at=stall_at,
            stall_seconds=f.stall_seconds,
            rate=f.rate_per_connection,
            chunked=f.chunked,
        )

    # -- writing ---------------------------------------------------------------------------

    def _start_response(self, status: int, headers: list[tuple[str, str]]) -> None:
        # Logged before anything is sent, so a client that has seen the answer also
        # finds it in the log.
        self.owner._log(
            RequestRecord(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                status=status,
                range=self.headers.get("Range"),
                client_port=self.client_address[1],
            )
        )
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send_simple(self, status: int, headers: dict[str, str], head: bool) -> None:
        """A short text answer (errors, redirects, canned statuses) with a correct length,
        so the connection stays usable."""
        out = list(headers.items())
        given = {name.lower() for name in headers}
        body = b""
        if status >= 200 and status not in (204, 304):
            reason = self.responses.get(status, ("",))[0]
            body = f"{status} {reason}\n".encode()
            if "content-type" not in given:
                out.append(("Content-Type", "text/plain"))
            if "content-length" not in given:
                out.append(("Content-Length", str(len(body))))
        self._start_response(status, out)
        if not head and body:
            self.wfile.write(body)

    def _write_body(self, plan: _BodyPlan) -> None:
        stopping = self.owner._stopping
        chunk = WRITE_CHUNK if plan.rate is None else max(1, min(PACED_CHUNK, plan.rate // 20))
        started = time.monotonic()
        stall_at = plan.stall_at
        pos = 0
        while True:
            if stall_at is not None and pos == stall_at:
                stall_at = None
                if stopping.wait(plan.stall_seconds):
                    raise ConnectionAbortedError("server stopping")
                started += plan.stall_seconds  # the rate cap must not catch up after a stall
            if pos >= plan.send:
                break
            end = min(plan.send, pos + chunk)
            if stall_at is not None and pos < stall_at < end:
                end = stall_at
            self._write_piece(plan.body[pos:end], plan.chunked)
            pos = end
            if plan.rate is not None:
                delay = started + pos / plan.rate - time.monotonic()
                if delay > 0:
                    stopping.wait(delay)
            if stopping.is_set():
                raise ConnectionAbortedError("server stopping")
        if plan.cut:
            self.close_connection = True
            hard_shutdown(self.connection)
        elif plan.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write_piece(self, piece: memoryview, chunked: bool) -> None:
        if chunked:
            self.wfile.write(b"%X\r\n" % len(piece))
            self.wfile.write(piece)
            self.wfile.write(b"\r\n")
        else:
            self.wfile.write(piece)
