"""A threaded HTTP(S) file server for tests: byte ranges, validators, redirects, auth and
switchable fault injection (the switches live in faults.py).

Bodies are held in memory and written as memoryview slices, so serving a 200 MB file
copies nothing per request. Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import socket
import socketserver
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from .faults import Faults, RequestRecord
from .http_handler import FileHandler, ServedFile
from .http_util import default_etag, hard_shutdown, path_key, url_path, with_etag_suffix

__all__ = ["Faults", "FileServer", "RequestRecord"]

# A fixed default Last-Modified (2023-11-14T22:13:20Z) keeps test runs reproducible.
DEFAULT_LAST_MODIFIED = 1_700_000_000.0
JOIN_TIMEOUT = 5.0


@dataclass
class _Redirect:
    location: str
    status: int
    times: int | None
    used: int = 0


@dataclass
class _Token:
    target_path: str
    limit: int
    uses: int = 0


class FileServer:
    """Serves in-memory files over HTTP/1.1 (keep-alive) on 127.0.0.1, optionally TLS.

    The port is bound on construction, so `base_url` and `add_file` work before start().
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._files: dict[str, ServedFile] = {}
        self._redirects: dict[str, _Redirect] = {}
        self._signed: dict[str, tuple[str, int]] = {}  # path -> (target path, uses per token)
        self._signed_targets: set[str] = set()
        self._tokens: dict[str, _Token] = {}
        self._token_serial = itertools.count(1)
        self._auth: dict[str, str] = {}
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self.requests: list[RequestRecord] = []
        self.max_concurrent: dict[str, int] = {}
        self._httpd = _HTTPServer(self, ssl_context)
        self.port: int = self._httpd.server_address[1]
        scheme = "https" if ssl_context is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._closed:
            raise RuntimeError("FileServer can be started once")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            # shutdown() waits up to one poll interval, and every test stops a server.
            kwargs={"poll_interval": 0.01},
            name=f"FileServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()  # wakes every stall and rate-limit sleep
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        with self._lock:
            connections = list(self._connections.items())
        # Handler threads may sit in a keep-alive read or a blocked send; unblock them.
        for sock, _ in connections:
            hard_shutdown(sock)
        for _, thread in connections:
            thread.join(JOIN_TIMEOUT)
        self._httpd.server_close()

    def __enter__(self) -> FileServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------

    def add_file(
        self,
        path: str,
        data: bytes,
        *,
        etag: str | None = None,
        last_modified: float | None = None,
        content_disposition: str | None = None,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        faults: Faults | None = None,
    ) -> str:
        """Serve `data` at `path` (must start with "/"); returns the full URL. The default
        ETag is the quoted sha1 of `data`; `headers` are extra response headers, sent as
        given on 200/206 answers.

        Paths here and in the other methods may be given plain or percent-encoded: they are
        matched percent-decoded, and returned URLs are percent-encoded."""
        key = _key(path)
        entry = ServedFile(
            path=path,
            data=data,
            etag=etag if etag is not None else default_etag(data),
            last_modified=DEFAULT_LAST_MODIFIED if last_modified is None else last_modified,
            content_type=content_type,
            content_disposition=content_disposition,
            headers=dict(headers or {}),
            faults=faults if faults is not None else Faults(),
        )
        with self._lock:
            self._files[key] = entry
        return self._url(path)

    def set_content(self, path: str, data: bytes, *, etag: str | None = None) -> None:
        """Replace the content of `path`, as a remote file that changed: a new ETag (even
        for identical bytes) and a Last-Modified one minute later."""
        new_etag = etag if etag is not None else default_etag(data)
        with self._lock:
            entry = self._files[_key(path)]
            if new_etag == entry.etag:
                new_etag = with_etag_suffix(new_etag, str(time.monotonic_ns()))
            entry.data = data
            entry.etag = new_etag
            entry.last_modified += 60

    def set_faults(self, path: str, faults: Faults) -> None:
        """Switch the faults of `path`; the fault counters start again from zero."""
        with self._lock:
            entry = self._files[_key(path)]
            entry.faults = faults
            entry.reset_counters()

    def require_auth(self, path: str, header_value: str) -> None:
        """Answer 401 to requests for `path` whose Authorization is not exactly this."""
        key = _key(path)
        with self._lock:
            self._auth[key] = header_value

    def add_redirect(
        self, path: str, location: str, status: int = 302, *, times: int | None = None
    ) -> str:
        """Redirect `path` to `location` (sent as given), at most `times` times; after that
        `path` is served as a file if one was added there, else 404."""
        key = _key(path)
        with self._lock:
            self._redirects[key] = _Redirect(location, status, times)
        return self._url(path)

    def add_signed_redirect(
        self, path: str, target_path: str, *, expire_after_requests: int
    ) -> str:
        """A CDN-style signed URL: every request for `path` gets a 302 to an absolute
        `target_path?token=N` URL with a new token; each token answers 403 once it has been
        used `expire_after_requests` times. `target_path` itself, without a token that
        was handed out for it, answers 403."""
        key, target_key = _key(path), _key(target_path)
        with self._lock:
            self._signed[key] = (target_path, expire_after_requests)
            self._signed_targets.add(target_key)
        return self._url(path)

    # -- request log -----------------------------------------------------------------------

    def clear_log(self) -> None:
        """Forget logged requests and the max_concurrent high-water marks."""
        with self._lock:
            self.requests.clear()
            self.max_concurrent.clear()

    def ranged_requests(self, path: str) -> list[RequestRecord]:
        """Logged requests for `path` (query string ignored) that carried a Range header."""
        key = _key(path)
        with self._lock:
            records = list(self.requests)
        return [
            r for r in records if r.range is not None and path_key(urlsplit(r.path).path) == key
        ]

    # -- used by the handler ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + url_path(path)

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _register(self, sock: socket.socket) -> None:
        with self._lock:
            # Checked under the lock that stop() sweeps under, so no connection is missed.
            if self._stopping.is_set():
                raise ConnectionAbortedError("server is stopping")
            self._connections[sock] = threading.current_thread()

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def _take_redirect(self, path: str) -> tuple[int, str] | None:
        with self._lock:
            redirect = self._redirects.get(path)
            if redirect is not None and (redirect.times is None or redirect.used < redirect.times):
                redirect.used += 1
                return redirect.status, redirect.location
            signed = self._signed.get(path)
            if signed is None:
                return None
            target_path, limit = signed
            token = str(next(self._token_serial))
            self._tokens[token] = _Token(path_key(target_path), limit)
        return 302, f"{self._url(target_path)}?token={token}"

    def _token_ok(self, path: str, query: str) -> bool:
        with self._lock:
            if path not in self._signed_targets:
                return True
            values = parse_qs(query).get("token")
            token = self._tokens.get(values[0]) if values else None
            if token is None or token.target_path != path:
                return False
            token.uses += 1
            return token.uses <= token.limit


def _key(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    return path_key(path)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FileServer.stop() joins the handler threads, with a timeout
    request_queue_size = 128  # engines open many connections at once

    def __init__(self, owner: FileServer, ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), FileHandler)
        if ssl_context is not None:
            # The handshake runs in the handler thread (see FileHandler.setup), so one slow or
            # failing client cannot hold up the accept loop.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may query DNS; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up (resets, failed TLS handshakes) are routine in these tests.
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]
