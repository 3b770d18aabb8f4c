"""Small network middlemen on 127.0.0.1 for the fault tests.

`TcpRelay` forwards a port to the test server and can be switched off and on again on the same
port, so "connection refused" can come and go mid-download; `CountingRelay` also counts what
the client sent, so an upload's bytes on the wire can be measured. `ForwardProxy` is a minimal
HTTP proxy (absolute-form requests and CONNECT tunnels) that maps made-up host names to local
ports and logs what it was asked, so a test can see whether laden used it and whether HTTPS stayed
inside a tunnel. Nothing here connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Listener:
    def __init__(self) -> None:
        self.port = 0
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Close the port (new connections are refused) and cut every open connection."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(sock)
        return sock

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(self._track(client),), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Listener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class TcpRelay(_Listener):
    """127.0.0.1:port -> 127.0.0.1:target_port, byte for byte."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self._track(socket.create_connection(("127.0.0.1", self.target_port)))
        except OSError:
            client.close()
            return
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


class ForwardProxy(_Listener):
    """An HTTP proxy whose world is a dict: host name -> a port on 127.0.0.1.

    `requests` logs each request line as received (`GET http://files.invalid/x HTTP/1.1`,
    `CONNECT files.invalid:443 HTTP/1.1`).
    """

    def __init__(self, hosts: dict[str, int]) -> None:
        super().__init__()
        self.hosts = hosts
        self.requests: list[str] = []

    def _target(self, host: str) -> int | None:
        return self.hosts.get(host)

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while True:
                line = reader.readline(65536).decode("latin-1")
                if not line.strip():
                    return
                headers = []
                while True:
                    header = reader.readline(65536).decode("latin-1")
                    if header in ("\r\n", "\n", ""):
                        break
                    headers.append(header)
                self.requests.append(line.strip())
                method, target, version = line.split()
                if method == "CONNECT":
                    self._tunnel(client, reader, target)
                    return
                if not self._forward(client, reader, method, target, version, headers):
                    return
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def _tunnel(self, client: socket.socket, reader: object, target: str) -> None:
        host, _, _port = target.rpartition(":")
        port = self._target(host.strip("[]"))
        if port is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = self._track(socket.create_connection(("127.0.0.1", port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def _forward(self, client: socket.socket, reader: object, method: str, target: str,
                 version: str, headers: list[str]) -> bool:
        parts = urlsplit(target)
        port = self._target(parts.hostname or "")
        if parts.scheme != "http" or port is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                           b"Connection: close\r\n\r\n")
            return False
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = [h for h in headers if not h.lower().startswith(("connection:", "proxy-"))]
        request = (f"{method} {path or '/'} {version}\r\n" + "".join(kept)
                   + "Connection: close\r\n\r\n").encode("latin-1")
        upstream = self._track(socket.create_connection(("127.0.0.1", port)))
        upstream.sendall(request)
        # One request per connection: the answer ends when the server closes.
        _pump(upstream, client)
        return False


class CountingRelay(TcpRelay):
    """A `TcpRelay` that counts the bytes the client sends (`sent`): what an upload put on the
    wire, whichever service is behind it, request lines and headers included.

    For a service whose emulator runs in another process (Azurite) or keeps its answers to
    itself, the relay can also stand in the way of one kind of request, picked by a pattern of
    its request line and headers: `holding` keeps such a request whole for a while before it
    goes on (a commit that reaches the service after its client died), `losing_answer` passes
    the request on and cuts the connection instead of passing the service's answer back (a
    commit that took effect, whose client never learns it). Each takes effect for requests
    that begin while inside.
    """

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.sent = 0
        self._count_lock = threading.Lock()
        self._rules: list[_Rule] = []

    @contextlib.contextmanager
    def holding(self, request: bytes, seconds: float) -> Iterator[threading.Event]:
        """Requests whose head matches the regular expression `request` are kept at the relay,
        whole, for `seconds`, then sent on. Yields an event set when one has arrived whole."""
        rule = _Rule(re.compile(request, re.MULTILINE), hold=seconds)
        self._rules.append(rule)
        try:
            yield rule.arrived
        finally:
            self._rules.remove(rule)

    @contextlib.contextmanager
    def losing_answer(self, request: bytes) -> Iterator[threading.Event]:
        """The first request whose head matches `request` goes to the service whole; its
        answer is dropped and the connection cut. Yields an event set when that happened."""
        rule = _Rule(re.compile(request, re.MULTILINE), lose_answer=True)
        self._rules.append(rule)
        try:
            yield rule.arrived
        finally:
            if rule in self._rules:
                self._rules.remove(rule)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self._track(socket.create_connection(("127.0.0.1", self.target_port)))
        except OSError:
            client.close()
            return
        cut = threading.Event()
        threading.Thread(target=_answers, args=(upstream, client, cut), daemon=True).start()
        try:
            while data := client.recv(65536):
                self._count(data)
                rule = self._matching(data)
                if rule is not None:
                    data = self._whole(client, data)
                    if rule.lose_answer:
                        with contextlib.suppress(ValueError):
                            self._rules.remove(rule)  # once
                        cut.set()
                    elif rule.hold:
                        rule.arrived.set()
                        time.sleep(rule.hold)
                upstream.sendall(data)
                if rule is not None and rule.lose_answer:
                    rule.arrived.set()
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _count(self, data: bytes) -> None:
        with self._count_lock:
            self.sent += len(data)

    def _matching(self, data: bytes) -> _Rule | None:
        if not self._rules:
            return None
        head = data[:data.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in data else b""
        return next((r for r in list(self._rules) if head and r.request.search(head)), None)

    def _whole(self, client: socket.socket, data: bytes) -> bytes:
        """`data` (a request's start) and the rest of its body, read from `client`."""
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        missing = (int(length[1]) if length else 0) - len(body)
        pieces = [data]
        while missing > 0:
            more = client.recv(min(missing, 65536))
            if not more:
                break
            self._count(more)
            pieces.append(more)
            missing -= len(more)
        return b"".join(pieces)


class _Rule:
    def __init__(self, request: re.Pattern[bytes], *, hold: float = 0.0,
                 lose_answer: bool = False) -> None:
        self.request, self.hold, self.lose_answer = request, hold, lose_answer
        self.arrived = threading.Event()


def _answers(upstream: socket.socket, client: socket.socket, cut: threading.Event) -> None:
    """The service's answers back to the client, until `cut`: then the connection ends."""
    try:
        while data := upstream.recv(65536):
            if cut.is_set():
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (upstream, client):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
