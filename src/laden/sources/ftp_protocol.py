"""What laden says to an FTP server and what the replies mean: sizes, dates, features,
listings, glob patterns, and the one classification of FTP errors into laden's.

Folders are listed with MLSD (RFC 3659), the only listing with a defined format; `LIST` output
is whatever `ls -l` printed on the server, so only the common Unix form is parsed, and a server
that prints anything else is asked for bare names (`NLST`), with `SIZE` telling files from
folders.
"""

from __future__ import annotations

import calendar
import ftplib
import socket
import ssl
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import HostNotFound, LadenError, Permanent, Retryable
from ..core.options import DownloadOptions
from . import versions
from .base import RemoteInfo
from .foreign_errors import Becomes, ErrorTable
from .http import netrc_credentials
from .statuses import FTP_REPLIES, Wording

GLOB_CHARS = "*?["
NOT_IMPLEMENTED = ("500", "501", "502", "504")

Entry = tuple[str, bool, int | None]
"""(name, is_folder, size)"""


def split_glob(path: str) -> tuple[str, str | None]:
    """("dir", "*.iso") for "dir/*.iso"; (path, None) when no segment is a pattern."""
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if any(c in segment for c in GLOB_CHARS):
            return "/".join(segments[:index]), "/".join(segments[index:])
    return path, None


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if folder.strip("/") else name


def entries(ftp: ftplib.FTP, folder: str) -> list[Entry]:
    """The files and folders directly in `folder`."""
    try:
        found = [(n, f.get("type", "").lower() == "dir", _int(f.get("size")))
                 for n, f in ftp.mlsd(folder, facts=["type", "size"])
                 if f.get("type", "").lower() in ("file", "dir")]
    except ftplib.error_perm as exc:
        if str(exc)[:3] not in NOT_IMPLEMENTED:
            raise
        lines: list[str] = []
        ftp.retrlines(f"LIST {folder}".rstrip(), lines.append)
        found = [e for e in map(parse_list_line, lines) if e is not None]
        if lines and not found:
            names = [n.rsplit("/", 1)[-1] for n in ftp.nlst(folder)]
            found = [(n, size is None, size) for n in names
                     for size in [size_or_none(ftp, join(folder, n))]]
    ftp.voidcmd("TYPE I")  # listings switch to ASCII; every RETR needs binary
    return [e for e in found if _safe_name(e[0])]


def _safe_name(name: str) -> bool:
    """A hostile server's names must not leave the folder (slashes, backslashes, "." and "..")
    nor reach a terminal as escape sequences (control characters)."""
    return (
        name.strip() not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )


def parse_list_line(line: str) -> Entry | None:
    """One line of Unix `ls -l` output: `-rw-r--r-- 1 owner group 1234 Jan 01 12:00 name`."""
    fields = line.split(None, 8)
    if len(fields) < 9 or fields[0][:1] not in ("-", "d", "l") or not fields[4].isdigit():
        return None
    name = fields[8].split(" -> ")[0] if fields[0][0] == "l" else fields[8]
    return name, fields[0][0] == "d", int(fields[4])


def size_or_none(ftp: ftplib.FTP, path: str) -> int | None:
    """SIZE of `path`, None when the server has no SIZE or `path` is not a file."""
    try:
        return _int(ftp.sendcmd(f"SIZE {path}")[4:])
    except ftplib.error_perm:
        return None


# -- commands, replies, errors -----------------------------------------------------------------


def remote_size(ftp: ftplib.FTP, url: str, path: str) -> int | None:
    try:
        return _int(ftp.sendcmd(f"SIZE {path}")[4:])
    except ftplib.error_perm as exc:
        if str(exc)[:3] in NOT_IMPLEMENTED:
            return None  # the server has no SIZE: the size stays unknown, one stream
        raise Permanent(f"{host_of(url)}: no such file {path!r} ({str(exc).strip()})") from None


def remote_mdtm(ftp: ftplib.FTP, path: str) -> str | None:
    try:
        reply = ftp.sendcmd(f"MDTM {path}")
    except ftplib.error_perm:
        return None
    return reply[4:].strip() or None


def check_unchanged(ftp: ftplib.FTP, remote: RemoteInfo, path: str) -> None:
    """FTP has no If-Range: SIZE and MDTM on this connection must still be the probe's.

    Raises RemoteChanged otherwise; a server that has neither proves nothing either way.
    """
    size = remote_size(ftp, remote.url, path) if remote.size is not None else None
    mdtm = remote_mdtm(ftp, path) if remote.extra.get("mdtm") else None
    versions.check_answer(versions.Validators(size=remote.size, modified=remote.extra.get("mdtm")),
                          versions.Validators(size=size, modified=mdtm), remote.url)


def supports_rest(ftp: ftplib.FTP) -> bool:
    """REST STREAM in FEAT (RFC 3659); a server without FEAT is assumed to resume, and one that
    then refuses REST makes the engine fall back to a single stream."""
    try:
        features = ftp.sendcmd("FEAT").upper()
    except ftplib.error_perm:
        return True
    return "REST STREAM" in features


def classified(
    exc: BaseException, url: str, what: str, options: DownloadOptions | None = None
) -> BaseException:
    """The one place FTP errors become laden's: retry, slow down, or give up with a reason."""
    return ERRORS.translate(exc, host=host_of(url), what=what, options=options)


_REPLIES = Wording(
    table=FTP_REPLIES,
    slow_down="{host} has too many connections: {text}",
    server_error="{host} failed {what}: {text}",
    refused="{host} refused {what}: {text}",
    statuses={550: "{host}: no such file or no permission: {text}"},
)


def _reply_error(exc: Any, facts: Any) -> LadenError:
    """A 4xx or 5xx reply (ftplib's error_temp or error_perm)."""
    text = str(exc).strip()
    code = _int(text[:3])
    # A reply too garbled to read as a number is still temporary or permanent.
    means = code if code is not None else 400 if isinstance(exc, ftplib.error_temp) else 500
    return _REPLIES.error(code, means=means, host=facts["host"], what=facts["what"], text=text)


def _untrusted(exc: Any, facts: Any) -> LadenError:
    options = facts["options"]
    hint = "" if options and options.ca_bundle else "; pass --ca-bundle FILE if you trust it"
    return Permanent(f"the TLS certificate of {facts['host']} is not trusted{hint}")


ERRORS = ErrorTable(lambda: {
    ssl.SSLCertVerificationError: _untrusted,
    ssl.SSLError: Becomes(Permanent, "TLS error talking to {host}: {text}"),
    (ftplib.error_temp, ftplib.error_perm): _reply_error,
    TimeoutError: Becomes(Retryable, "timed out talking to {host}"),
    ConnectionRefusedError: Becomes(Retryable, "{host} refused the connection"),
    socket.gaierror: lambda exc, facts: HostNotFound(facts["host"]),
    (ftplib.Error, OSError, EOFError): lambda exc, facts: Retryable(
        f"connection to {facts['host']} failed: {str(exc).strip() or type(exc).__name__}"),
})
"""ftplib's, ssl's and the socket's exceptions. Facts: `host`, `what` (the command or step
that failed), `options` (or None)."""


def credentials(url: str, options: DownloadOptions) -> tuple[str, str]:
    """User and password: the options' (the address's, moved there by the manager), the
    address's, ~/.netrc's, else anonymous."""
    parts = urlsplit(url)
    if options.username:
        return options.username, options.password or ""
    if parts.username is not None:
        return unquote(parts.username), unquote(parts.password or "")
    if options.netrc:
        user, password = netrc_credentials(parts.hostname or "")
        if user is not None:
            return user, password or ""
    return "anonymous", "anonymous@"


def server_path(url: str) -> str:
    """The path as the server sees it: relative to the login folder, as RFC 1738 and curl read
    `ftp://host/dir/file`; `ftp://host//abs/file` names an absolute path."""
    path = unquote(urlsplit(url).path)
    return path[1:] if path.startswith("/") else path


def http_date(mdtm: str) -> str | None:
    try:
        seconds = calendar.timegm(time.strptime(mdtm[:14], "%Y%m%d%H%M%S"))  # MDTM is UTC
    except ValueError:
        return mdtm
    return formatdate(seconds, usegmt=True)


def _int(text: Any) -> int | None:
    value = str(text).strip() if text is not None else ""
    return int(value) if value.isdigit() else None


def quit_quietly(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        ftp.close()


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or url
