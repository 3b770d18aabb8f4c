"""FTP and explicit FTPS (AUTH TLS) through the standard library's `ftplib`.

`SIZE` gives the size and `MDTM` the validator; each range is a `REST offset` + `RETR` on its own
control connection, read up to the range's end and then aborted, because FTP has no way to ask
for an end. FTP has no precondition either, so SIZE and MDTM are asked again on that connection
before and after each `RETR` (`check_unchanged`). Logged-in control connections are kept in a
small pool so segments and the files of a folder do not pay for a login each. Passive mode
only; the data address is the control connection's host (never the one in the PASV reply,
which is wrong behind NAT).
"""

from __future__ import annotations

import contextlib
import ftplib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..core.config import Config
from ..core.errors import Permanent, RangeNotSupported, RemoteChanged, RemoteError, Retryable
from ..core.known_sources import known_source
from ..core.options import DownloadOptions
from ..core.urls import strip_credentials
from . import listing
from .base import ListedObject, RangeReader, RemoteInfo, Source
from .ftp_protocol import (
    NOT_IMPLEMENTED,
    check_unchanged,
    classified,
    credentials,
    entries,
    host_of,
    http_date,
    quit_quietly,
    remote_mdtm,
    remote_size,
    server_path,
    size_or_none,
    split_glob,
    supports_rest,
)
from .http import make_ssl_context
from .requests_log import logged_request

IDLE_CHECK = 10.0  # seconds idle after which a pooled connection is checked with NOOP
POOL_SIZE = 16


class FtpSource(Source):
    known = known_source("ftp")
    SUPPORTS_LISTING = True

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._lock = threading.Lock()
        self._idle: dict[tuple[Any, ...], list[tuple[float, ftplib.FTP]]] = {}

    @property
    def stall_timeout(self) -> float:
        """Seconds a data connection may stay silent (or full, when sending) before it counts
        as stalled: the uploader's too."""
        return self._config.stall_timeout

    # -- facts and bytes ---------------------------------------------------------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        path = server_path(url)
        with logged_request("SIZE", url) as answer, self._session(url, options) as ftp:
            size = remote_size(ftp, url, path)
            mdtm = remote_mdtm(ftp, path)
            ranges = size is not None and supports_rest(ftp)
            answer.status = f"{size} bytes, MDTM {mdtm}, REST {'yes' if ranges else 'no'}"
        clean = strip_credentials(url)
        return RemoteInfo(
            url=clean, final_url=clean, size=size, supports_ranges=ranges,
            last_modified=http_date(mdtm) if mdtm else None,
            filename=path.rstrip("/").rsplit("/", 1)[-1] or None,
            extra={"mdtm": mdtm} if mdtm else {},
        )

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        url, path = remote.url, server_path(remote.url)
        ftp = self.connect(url, options)
        try:
            check_unchanged(ftp, remote, path)
            try:
                with logged_request("RETR", url, start, end) as answer:
                    data = ftp.transfercmd(f"RETR {path}", rest=start or None)
                    answer.status = "opened"
            except ftplib.error_perm as exc:
                if start and str(exc)[:3] in NOT_IMPLEMENTED:
                    raise RangeNotSupported(f"{host_of(url)} refused REST {start}: {exc}") from None
                raise
            data.settimeout(self._config.stall_timeout)
        except BaseException as exc:
            ftp.close()
            raise classified(exc, url, "the download") from None
        return FtpRangeReader(self, ftp, data, remote, options, start, end)

    # -- folders -----------------------------------------------------------------------------

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        path = server_path(url)
        if not path or path.endswith("/"):
            return True
        with self._session(url, options) as ftp:
            if size_or_none(ftp, path) is not None:
                return False
            home = ftp.pwd()
            try:
                ftp.cwd(path)
            except ftplib.error_perm:
                return split_glob(path)[1] is not None
            ftp.cwd(home)  # every path laden sends is relative to the login folder
            return True

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        path = server_path(url)
        # `ftp://host//abs/dir/` names an absolute folder; the filter reads paths without it.
        root = "/" if path.startswith("/") else ""
        chosen = listing.selection(path[len(root):], options)
        found: list[tuple[str, int | None]] = []
        with self._session(url, options) as ftp:
            pending = [""]
            while pending:
                relative = pending.pop(0)
                for name, is_dir, size in entries(ftp, root + chosen.base + relative):
                    child = f"{relative}{name}"
                    if is_dir and chosen.may_hold(child):
                        pending.append(child + "/")
                    elif not is_dir:
                        found.append((chosen.base + child, size))
        parts = urlsplit(url)

        def file_url(key: str) -> str:
            # The address keeps the folder's user:password@: `add` moves it into the options
            # again, and the journal never sees it.
            return urlunsplit((parts.scheme, parts.netloc, "/" + quote(root + key), "", ""))

        return listing.expand(strip_credentials(url), found, chosen, file_url)

    # -- connections -------------------------------------------------------------------------

    def _key(self, url: str, options: DownloadOptions) -> tuple[Any, ...]:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.hostname, parts.port or 21, *credentials(url, options),
                options.ca_bundle, options.insecure)

    def connect(self, url: str, options: DownloadOptions) -> ftplib.FTP:
        """A logged-in control connection: an idle one from the pool, else a new one."""
        key = self._key(url, options)
        while True:
            with self._lock:
                idle = self._idle.get(key)
                since, ftp = idle.pop() if idle else (0.0, None)
            if ftp is None:
                return self._open_connection(url, options)
            if time.monotonic() - since < IDLE_CHECK:
                return ftp
            try:
                ftp.voidcmd("NOOP")
                return ftp
            except (ftplib.Error, OSError, EOFError):
                ftp.close()

    def _open_connection(self, url: str, options: DownloadOptions) -> ftplib.FTP:
        parts = urlsplit(url)
        user, password = credentials(url, options)
        timeout = self._config.connect_timeout
        ftp: ftplib.FTP
        if parts.scheme.lower() == "ftps":
            context = make_ssl_context(options.ca_bundle, insecure=options.insecure)
            ftp = _TlsFtp(context=context, timeout=timeout)
        else:
            ftp = ftplib.FTP(timeout=timeout)
        try:
            ftp.connect(parts.hostname or "", parts.port or 21)
            if isinstance(ftp, _TlsFtp):
                try:
                    ftp.auth()
                except ftplib.error_perm as exc:
                    message = f"{host_of(url)} does not offer FTPS (AUTH TLS): {exc}"
                    raise Permanent(message) from None
            try:
                ftp.login(user, password)
            except ftplib.error_perm as exc:
                raise Permanent(f"FTP login to {host_of(url)} as {user!r} failed: {exc}"
                                f"{_login_hint(user, password)}") from None
            if isinstance(ftp, _TlsFtp):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
        except BaseException as exc:
            ftp.close()
            raise classified(exc, url, "the connection", options) from None
        return ftp

    def release(self, url: str, options: DownloadOptions, ftp: ftplib.FTP) -> None:
        key = self._key(url, options)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < POOL_SIZE:
                idle.append((time.monotonic(), ftp))
                return
        quit_quietly(ftp)

    def _session(self, url: str, options: DownloadOptions) -> _Session:
        return _Session(self, url, options)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, ftp in connections:
                quit_quietly(ftp)


def _login_hint(user: str, password: str) -> str:
    """What to do when a login without credentials failed: the usual case is a download
    resumed (or a command run again) without them, and laden never stores a password."""
    never = "laden never stores credentials, not even for a resume"
    if user == "anonymous":
        return f"; the server wants a login: give -u USER:PASSWORD or ~/.netrc ({never})"
    if not password:
        return f"; no password was given ({never}): give -u USER:PASSWORD or ~/.netrc"
    return ""  # a password was given: the wrong one, and the server's reply says so


class _Session:
    """A pooled connection for a few commands; goes back to the pool only if all went well."""

    def __init__(self, source: FtpSource, url: str, options: DownloadOptions) -> None:
        self.source, self.url, self.options = source, url, options

    def __enter__(self) -> ftplib.FTP:
        self.ftp = self.source.connect(self.url, self.options)
        return self.ftp

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.source.release(self.url, self.options, self.ftp)
            return
        self.ftp.close()
        if not isinstance(exc, RemoteError):
            raise classified(exc, self.url, "the request") from None


class FtpRangeReader:
    """One `RETR` from an offset, read until the range ends, then stopped cleanly.

    SIZE and MDTM are compared with the probe's before the `RETR` and again after it: a file
    rewritten in place while this range was read would otherwise leave bytes of two versions
    in it, and when it is the last range no later check would see that.
    """

    def __init__(self, source: FtpSource, ftp: ftplib.FTP, data: socket.socket,
                 remote: RemoteInfo, options: DownloadOptions, start: int,
                 end: int | None) -> None:
        self._source, self._ftp, self._data = source, ftp, data
        self._remote, self._url, self._options = remote, remote.url, options
        self._position, self._end, self._size = start, end, remote.size
        self._eof = self._broken = False

    def readinto(self, buffer: memoryview) -> int:
        want = len(buffer) if self._end is None else min(len(buffer), self._end - self._position)
        if want <= 0:
            return 0
        try:
            n = self._data.recv_into(buffer[:want])
        except TimeoutError:
            self._broken = True
            raise Retryable("the connection stalled (no data before the stall timeout)") from None
        except OSError as exc:
            self._broken = True
            raise Retryable(f"connection lost: {exc}") from None
        self._eof = n == 0 and not self._broken
        self._position += n
        return n

    def abort(self) -> None:
        """Shut the data connection down from another thread (a connection judged too slow):
        the read waiting on it returns, and `close` stops the transfer with ABOR."""
        self._broken = True
        with contextlib.suppress(OSError):
            self._data.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        ftp = self._ftp
        try:
            if not self._eof and self._position == self._size:
                self._eof = self._data.recv(1) == b""  # the server's end of file is next
            self._data.close()
            if self._eof:
                ftp.voidresp()  # 226: the transfer ended by itself
            else:
                # Closing the data connection first stops any server, even one that does not
                # read commands during a transfer; ABOR then settles its state, and the NOOP's
                # 200 marks the end of whatever replies (426, 225, 226) that produced.
                ftp.putcmd("ABOR")
                ftp.putcmd("NOOP")
                for _ in range(5):
                    if ftp.getmultiline().startswith("200"):
                        break
                else:
                    raise ftplib.error_proto("no reply to NOOP after ABOR")
            if not self._broken:  # a failed read is read again, and checked before that
                check_unchanged(ftp, self._remote, server_path(self._url))
        except (ftplib.Error, OSError, EOFError):
            ftp.close()  # its state is unknown: never reuse it
            return
        except (RemoteError, RemoteChanged):
            self._source.release(self._url, self._options, ftp)  # the connection is fine
            raise
        self._source.release(self._url, self._options, ftp)


class _TlsFtp(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control connection's TLS session on data connections, which
    many servers (vsftpd, FileZilla Server) require before they send any bytes."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = getattr(self.sock, "session", None)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size
