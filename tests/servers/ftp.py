"""FTP and explicit FTPS server: pyftpdlib in a daemon thread of the test process, 127.0.0.1.

Users: ``user``/``password`` with full rights on the root, and ``anonymous`` (read-only).
Files live in a temporary root directory; ``write_file`` and ``set_mtime`` prepare them.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ._proc import Emulator

USER = "laden"
PASSWORD = "s3cret-pw"


def free_port_range(count: int, *, low: int = 40000, high: int = 60000) -> list[int]:
    """``count`` consecutive ports that are free on 127.0.0.1 right now.

    pyftpdlib wants a fixed list of passive ports; a small one makes tests exercise the case
    where all passive ports are busy, and checking them first avoids colliding with another
    server on this machine.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return list(range(base, base + count))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")


def _steady_throttle(base: type) -> type:
    """``base`` (a ThrottledDTPHandler) with a throttle that holds the average rate from byte 0.

    pyftpdlib's own throttle lets the first ``limit`` bytes through, then sleeps twice the rest
    of that second, and never slows a transfer shorter than about twice the limit. Tests that
    need a download to take a known time (to pause or kill it midway) need the plain rule:
    never be ahead of ``limit * elapsed``.
    """

    class SteadyThrottledDTP(base):  # type: ignore[misc, valid-type]
        _started_at: float | None = None

        def __init__(self, sock: Any, cmd_channel: Any) -> None:
            super().__init__(sock, cmd_channel)
            # Small writes, about ten per second, so the rate is smooth at any scale.
            if self.write_limit:
                self.ac_out_buffer_size = max(512, min(65536, self.write_limit // 10))
            if self.read_limit:
                self.ac_in_buffer_size = max(512, min(65536, self.read_limit // 10))

        def _throttle_bandwidth(self, len_chunk: int, max_speed: int) -> None:
            now = time.monotonic()
            if self._started_at is None:
                self._started_at = now
            self._datacount += len_chunk
            delay = self._datacount / max_speed - (now - self._started_at)
            if delay <= 0.002:
                return

            def unsleep() -> None:
                events = self.ioloop.READ if self.receive else self.ioloop.WRITE
                self.add_channel(events=events)

            self.del_channel()
            self._cancel_throttler()
            self._throttler = self.ioloop.call_later(delay, unsleep, _errback=self.handle_error)

    return SteadyThrottledDTP


class FTPTestServer(Emulator):
    """A pyftpdlib server; ``tls=True`` makes it explicit FTPS (AUTH TLS) with a trustme CA.

    ``download_limit`` caps each data connection's send rate (bytes/s, server to client:
    RETR), ``upload_limit`` its receive rate (STOR). pyftpdlib's names for these are
    ``ThrottledDTPHandler.write_limit`` and ``read_limit``, seen from the server: a download
    is the server *writing*, so ``read_limit`` alone would not slow it.
    """

    user = USER
    password = PASSWORD

    def __init__(
        self,
        *,
        tls: bool = False,
        tls_required: bool = True,
        download_limit: int = 0,
        upload_limit: int = 0,
        passive_port_count: int = 8,
    ) -> None:
        self.tls = tls
        self.tls_required = tls_required
        self.download_limit = download_limit
        self.upload_limit = upload_limit
        self.passive_port_count = passive_port_count
        self.host = "127.0.0.1"
        self.port = 0
        self.passive_ports: list[int] = []
        self.root = Path()
        self.ca: Any = None  # trustme.CA when tls=True
        self.ca_cert_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> FTPTestServer:
        with warnings.catch_warnings():
            # pyftpdlib is built on asyncore/asynchat, deprecated since Python 3.6 (and taken
            # from the pyasyncore/pyasynchat backports on 3.12+); the warning is not ours.
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
            from pyftpdlib.ioloop import IOLoop
            from pyftpdlib.servers import FTPServer

        # Without a handler, pyftpdlib installs its own INFO-level stderr logging on first use.
        ftp_logger = logging.getLogger("pyftpdlib")
        if not ftp_logger.handlers:
            ftp_logger.addHandler(logging.NullHandler())
        ftp_logger.setLevel(logging.WARNING)

        self._tmp = tempfile.TemporaryDirectory(prefix="laden-ftp-")
        base = Path(self._tmp.name)
        self.root = base / "root"
        self.root.mkdir()
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm="elradfmwMT")
        authorizer.add_anonymous(str(self.root), perm="elr")

        # pyftpdlib is configured through class attributes: subclass per server so two
        # servers (plain and TLS, or different limits) never share settings.
        dtp_base: type = ThrottledDTPHandler
        handler_base: type = FTPHandler
        attrs: dict[str, Any] = {}
        if self.tls:
            import trustme
            from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

            self.ca = trustme.CA()
            cert = self.ca.issue_cert("127.0.0.1", "localhost")
            pem = base / "server.pem"
            cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
            self.ca_cert_path = base / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_cert_path))
            # TLS first in the MRO so its send/recv wrap the socket the throttle counts on.
            dtp_base = type("TLSThrottledDTP", (TLS_DTPHandler, ThrottledDTPHandler), {})
            handler_base = TLS_FTPHandler
            attrs.update(
                certfile=str(pem),
                keyfile=str(pem),
                ssl_context=None,  # built lazily from certfile; never reuse another server's
                tls_control_required=self.tls_required,
                tls_data_required=self.tls_required,
            )
        dtp = type(
            "TestDTPHandler",
            (_steady_throttle(dtp_base),),
            {"read_limit": self.upload_limit, "write_limit": self.download_limit},
        )
        self.passive_ports = free_port_range(self.passive_port_count)
        attrs.update(
            authorizer=authorizer,
            dtp_handler=dtp,
            passive_ports=self.passive_ports,
            # pyftpdlib waits 3 s before answering a wrong password (anti brute force);
            # tests of a failed login must not pay that.
            auth_failed_timeout=0,
            banner="laden test FTP server",
            # A test that leaves a connection open must not keep the server busy for 5 min.
            timeout=30,
        )
        handler = type("TestFTPHandler", (handler_base,), attrs)
        # A private IOLoop: the default is a process-wide singleton shared by all servers.
        self._server = FTPServer((self.host, 0), handler, ioloop=IOLoop())
        self.port = int(self._server.address[1])
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="ftp-test-server", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        # One poll per call, so the stop flag is checked at least every 50 ms, and close_all()
        # runs on the loop's own thread (pyftpdlib is not thread-safe).
        while not self._stopping.is_set():
            self._server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self._server.close_all()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=10)
            self._thread = None
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


    @property
    def url(self) -> str:
        scheme = "ftps" if self.tls else "ftp"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's certificate (``tls=True`` only)."""
        if self.ca is None:
            raise RuntimeError("this server was started without tls=True")
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def path(self, relative: str) -> Path:
        target = (self.root / relative.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"{relative!r} leaves the FTP root")
        return target

    def write_file(self, relative: str, data: bytes) -> Path:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def set_mtime(self, relative: str, mtime: float) -> None:
        """Set a file's modification time (seconds since the epoch; MDTM reports it in UTC)."""
        os.utime(self.path(relative), (mtime, mtime))
