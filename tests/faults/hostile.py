"""A hostile HTTP server on 127.0.0.1 whose every answer a test writes by hand.

The fault-injecting `FileServer` is a well-behaved server with switches; the servers here break
the protocol on purpose (a 206 of another version, a 416 without Content-Range, informational
answers before the real one, a body or headers that trickle), so each test says byte for byte
what goes back. A test gives a function `answer(request, reply)`; `reply` writes the status
line, headers and body, or anything raw.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    number: int  # 1 for the first request the server saw

    @property
    def range(self) -> tuple[int, int | None] | None:
        """(start, end exclusive or None) of a `bytes=a-b` Range header."""
        value = self.headers.get("range")
        if not value or not value.startswith("bytes="):
            return None
        first, _, last = value[6:].partition("-")
        return int(first), (int(last) + 1 if last else None)


@dataclass
class Reply:
    sock: socket.socket
    sent_head: bool = False
    closed: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, status: int, headers: dict[str, str] | list[tuple[str, str]],
             reason: str = "X") -> None:
        items = headers.items() if isinstance(headers, dict) else headers
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in items]
        self.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.sent_head = True

    def send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.head(status, {"Content-Length": str(len(body)), **headers})
        if body:
            self.raw(body)

    def trickle(self, data: bytes, every: float, piece: int = 1) -> None:
        """Send `data` `piece` bytes at a time, `every` seconds apart, until the client goes."""
        for start in range(0, len(data), piece):
            if self.stopping.is_set():
                return
            try:
                self.raw(data[start : start + piece])
            except OSError:
                return
            self.stopping.wait(every)


Answer = Callable[[Request, Reply], None]


def ranged(data: bytes, request: Request, headers: dict[str, str] | None = None
           ) -> tuple[int, dict[str, str], bytes]:
    """The honest answer to `request` for `data`: 206 with the range asked, else 200."""
    asked = request.range
    extra = dict(headers or {})
    if asked is None:
        return 200, extra, data
    start, end = asked
    end = len(data) if end is None else min(end, len(data))
    return 206, {"Content-Range": f"bytes {start}-{end - 1}/{len(data)}", **extra}, \
        data[start:end]


class HostileServer:
    """`with HostileServer(answer) as server: server.url("/f.bin")`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        try:
            while not self._stopping.is_set():
                line = reader.readline(65536)
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    header = reader.readline(65536).decode("latin-1").rstrip("\r\n")
                    if not header:
                        break
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                with self._lock:
                    request = Request(method, path, headers, len(self.requests) + 1)
                    self.requests.append(request)
                reply = Reply(sock, stopping=self._stopping)
                self.answer(request, reply)
                if reply.closed:
                    return
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            with contextlib.suppress(OSError):
                sock.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
