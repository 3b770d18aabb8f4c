"""Small stdlib HTTP/1.1 plumbing for the emulators written here (the HF hub and its CDN, the
Azure ML Resource Manager)."""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased, so `"authorization" in r.headers` just works


class RequestLog:
    """Every request a server received, in order; safe to read while the server runs."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def add(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getitem__(self, index: int) -> RecordedRequest:
        with self._lock:
            return self._items[index]


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive as they would with the real service; every
    # response therefore carries a Content-Length (serve_bytes guarantees it).
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection is dropped after this long, freeing its thread.
    timeout = 30
    callback: Callable[[Any], None]
    log: RequestLog
    body: bytes

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.log.add(RecordedRequest(self.command, self.path, headers))
        self.callback(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # the request log replaces the stderr access log


class QuietServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) calling ``callback(handler)`` per request;
    HTTPS when given a server-side ``tls`` context."""

    def __init__(self, callback: Callable[[Any], None], log: RequestLog,
                 tls: ssl.SSLContext | None = None) -> None:
        handler = type("Handler", (_Handler,), {"callback": staticmethod(callback), "log": log})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        # Do not join request threads on close: a client's pooled keep-alive connection would
        # otherwise hold stop() until that connection times out.
        self._server.block_on_close = False
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def start(self) -> QuietServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``(start, end)`` inclusive; ``None`` to ignore the header; ``False`` if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # malformed or multi-range: serve the whole body, as servers may
    first, last = match.groups()
    if first == "":
        length = int(last)
        return (max(size - length, 0), size - 1) if length and size else False
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


def serve_bytes(
    req: Any,
    data: bytes,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    ranges: bool = True,
    json_body: bool = False,
) -> None:
    """Answer ``req`` with ``data``, honouring ``Range`` and ``If-Range`` when ``ranges``."""
    out = {"Content-Type": "application/json" if json_body else "application/octet-stream"}
    out.update(headers or {})
    body = data
    if ranges and status == 200:
        out["Accept-Ranges"] = "bytes"
        wanted = req.headers.get("Range")
        if_range = req.headers.get("If-Range")
        if wanted and (if_range is None or if_range == out.get("ETag")):
            span = _parse_range(wanted, len(data))
            if span is False:
                status, body = 416, b""
                out["Content-Range"] = f"bytes */{len(data)}"
            elif isinstance(span, tuple):
                start, end = span
                status, body = 206, data[start : end + 1]
                out["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    out["Content-Length"] = str(len(body))
    req.send_response(status)
    for name, value in out.items():
        req.send_header(name, value)
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(body)
