"""Uploads to FTP and FTPS: a temporary name beside the target, then a rename.

The file is sent with `STOR` to `.NAME.TAG.laden-upload` in the target's folder (made when
missing), so readers never see half a file; the commit is `RNFR`/`RNTO` to the final name. TAG
names this version of the local file (`Pin.tag`): two uploads to one target (two machines, two
versions of a file) never continue each other's bytes. A resume asks the temporary file's
`SIZE` and goes on from there with `REST` + `STOR` (when the server lists `REST STREAM` in
`FEAT`) or `APPE`; a server that refuses both makes the upload start again from the first byte,
saying why. Pausing closes the data connection: the server keeps what arrived, and the next
`SIZE` says how much.

FTP has no conditional rename, so the conflict policy fail is a `SIZE` of the final name just
before the rename: another client could still take the name in between. The check after the
commit is the final name's `SIZE`, and its MD5 when the server offers a checksum command
(`HASH` with MD5, or `XMD5`); the policy skip compares the same, the size alone when the
server offers no checksum.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import re
import secrets
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..core.errors import DestinationExists, InputError, LadenError, UploadLost, UploadUnusable
from .ftp_protocol import classified, host_of, server_path, size_or_none
from .in_order_uploads import FileChecksums
from .requests_log import logged_request
from .uploads import StoredObject

if TYPE_CHECKING:
    import socket

    from ..core.options import DownloadOptions
    from .ftp import FtpSource

MiB = 1024 * 1024
TEMPORARY = ".{name}.{tag}.laden-upload"
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")


class FtpUploader:
    """FTP's `sources.uploads.Uploader`, in order (`in_order_uploads`)."""

    in_order = True
    conflict_at_begin = False  # looked at just before the rename
    one_stream = True
    whole_checksum = "crc32c"
    """The file's, kept in the journal; the server keeps none (its MD5 is compared where it
    offers one)."""
    min_part = 8 * MiB
    """Files up to this size are sent from memory in one STOR."""
    max_parts = 10_000

    def __init__(self, source: FtpSource) -> None:
        self._source = source

    # -- the object --------------------------------------------------------------------------

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        path = _target(url)
        with logged_request("SIZE", url) as answer, self._control(url, options) as ftp:
            size = size_or_none(ftp, path)
            md5 = None if size is None else _md5(ftp, path)
            answer.status = f"{size} bytes" + (", MD5" if md5 else "")
        return None if size is None else StoredObject(size, None, md5)

    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        # A name of its own: one request sends it whole, so nothing is continued later.
        temporary = self.begin_in_order(url, len(body), options, only_new=only_new,
                                        file_tag=secrets.token_hex(8))
        with logged_request("STOR", url, 0, len(body)) as answer, \
                self._control(url, options) as ftp:
            answer.status = ftp.storbinary(f"STOR {temporary}", io.BytesIO(bytes(body)))
        try:
            self.commit(url, temporary, len(body), options, only_new=only_new)
        except DestinationExists:
            self.abort(url, temporary, options)
            raise

    # -- the temporary file ------------------------------------------------------------------

    def takes_md5(self, url: str, options: DownloadOptions) -> bool:
        with self._control(url, options) as ftp:
            return _md5_commands(ftp, "") is not None

    def begin_in_order(self, url: str, size: int, options: DownloadOptions, *,
                       only_new: bool, file_tag: str) -> str:
        """The temporary name (the folder made when missing); nothing is sent yet."""
        path = _target(url)
        folder, _, name = path.rpartition("/")
        with self._control(url, options) as ftp:
            _make_folders(ftp, folder)
        return (folder + "/" if folder else "") + TEMPORARY.format(name=name, tag=file_tag)

    def offset(self, url: str, upload_id: str, size: int, options: DownloadOptions) -> int:
        with logged_request("SIZE", url) as answer, self._control(url, options) as ftp:
            held = size_or_none(ftp, upload_id) or 0
            answer.status = f"{held} bytes held"
        if held > size:
            raise UploadUnusable(f"the unfinished upload to {url} holds more than the file")
        return held

    def writer(self, url: str, upload_id: str, start: int, end: int, size: int,
               options: DownloadOptions) -> _Stream:
        ftp = self._source.connect(url, options)
        try:
            with logged_request("STOR", url, start, end) as answer:
                data = _open_data(ftp, url, upload_id, start)
                answer.status = "opened"
            data.settimeout(self._source.stall_timeout)
        except BaseException as exc:
            ftp.close()
            if isinstance(exc, LadenError):
                raise
            raise classified(exc, url, "the upload", options) from None
        return _Stream(self, ftp, data, url, upload_id, options)

    def commit(self, url: str, upload_id: str, size: int, options: DownloadOptions, *,
               only_new: bool) -> None:
        path = _target(url)
        with logged_request("RNTO", url) as answer, self._control(url, options) as ftp:
            if only_new and size_or_none(ftp, path) is not None:
                raise DestinationExists(
                    f"{url} exists already, and the conflict policy is fail (FTP cannot make "
                    "the check and the rename one step: it was checked just before the rename)")
            try:
                ftp.rename(upload_id, path)
            except ftplib.error_perm:
                if only_new or not self._replaceable(ftp, url, upload_id, path, size):
                    raise
                ftp.delete(path)  # servers that rename onto no existing name
                ftp.rename(upload_id, path)
            answer.status = "renamed"

    @staticmethod
    def _replaceable(ftp: ftplib.FTP, url: str, upload_id: str, path: str, size: int) -> bool:
        """Whether a refused rename may delete the target and rename again: only when the
        temporary file is the whole file and the target is there (a server that renames onto
        no existing name); never when the temporary file is gone or other than sent."""
        held = size_or_none(ftp, upload_id)
        if held is None:
            raise UploadLost(f"the unfinished upload to {url} is gone from the server (removed "
                             "by someone else?); nothing was renamed")
        if held != size:
            raise UploadUnusable(f"the unfinished upload to {url} holds {held} bytes, not the "
                                 f"file's {size}; nothing was renamed")
        return size_or_none(ftp, path) is not None

    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        with logged_request("DELE", url) as answer, self._control(url, options) as ftp:
            try:
                answer.status = ftp.delete(upload_id)
            except ftplib.error_perm:
                answer.status = "not there"  # never sent, or gone already

    def release(self, url: str, options: DownloadOptions, ftp: ftplib.FTP) -> None:
        self._source.release(url, options, ftp)

    @contextlib.contextmanager
    def _control(self, url: str, options: DownloadOptions) -> Iterator[ftplib.FTP]:
        """A pooled control connection for a few commands; back to the pool if all went well,
        its errors laden's."""
        ftp = self._source.connect(url, options)
        try:
            yield ftp
        except BaseException as exc:
            ftp.close()
            if isinstance(exc, LadenError):
                raise
            raise classified(exc, url, "the upload", options) from None
        self._source.release(url, options, ftp)


class _Stream:
    """The rest of the file on one data connection."""

    def __init__(self, uploader: FtpUploader, ftp: ftplib.FTP, data: socket.socket, url: str,
                 upload_id: str, options: DownloadOptions) -> None:
        self._uploader, self._ftp, self._data = uploader, ftp, data
        self._url, self._upload_id, self._options = url, upload_id, options

    def write(self, data: memoryview) -> None:
        try:
            self._data.sendall(data)
        except BaseException as exc:
            self.abort()
            raise classified(exc, self._url, "the upload", self._options) from None

    def finish(self, whole: FileChecksums | None) -> int:
        ftp = self._ftp
        try:
            _close_data(self._data)
            ftp.voidresp()  # 226: the server has the bytes
            held = size_or_none(ftp, self._upload_id) or 0
        except BaseException as exc:
            ftp.close()
            raise classified(exc, self._url, "the upload", self._options) from None
        self._uploader.release(self._url, self._options, ftp)
        return held

    def abort(self) -> None:
        """Close the data connection: the server keeps what arrived (the next SIZE says)."""
        ftp = self._ftp
        try:
            _close_data(self._data)
            ftp.voidresp()
        except (ftplib.Error, OSError, EOFError):
            ftp.close()
            return
        self._uploader.release(self._url, self._options, ftp)


def _open_data(ftp: ftplib.FTP, url: str, upload_id: str, start: int) -> socket.socket:
    """A data connection for the file from `start`: STOR, REST + STOR, or APPE."""
    if not start:
        return ftp.transfercmd(f"STOR {upload_id}")
    if _rest_stream(ftp):
        with contextlib.suppress(ftplib.error_perm):
            return ftp.transfercmd(f"STOR {upload_id}", rest=start)
    try:
        return ftp.transfercmd(f"APPE {upload_id}")
    except ftplib.error_perm as exc:
        # Refused however it is worded (vsftpd's cmds_denied answers 550 Permission denied):
        # from the first byte, STOR alone is needed, and says so if it is refused too.
        raise UploadUnusable(f"{host_of(url)} can continue no file (REST and APPE refused: "
                             f"{str(exc).strip()})") from None


def _close_data(data: socket.socket) -> None:
    if isinstance(data, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            data.unwrap()  # TLS's own end first: servers check it (vsftpd)
    data.close()


def _features(ftp: ftplib.FTP) -> str:
    try:
        return ftp.sendcmd("FEAT").upper()
    except ftplib.error_perm:
        return ""


def _rest_stream(ftp: ftplib.FTP) -> bool:
    return "REST STREAM" in _features(ftp)


def _md5_commands(ftp: ftplib.FTP, path: str) -> list[str] | None:
    """The commands that ask for `path`'s MD5, when the server offers HASH with MD5 or XMD5."""
    features = _features(ftp)
    if re.search(r"^\s*HASH\b.*\bMD5\b", features, re.MULTILINE):
        return ["OPTS HASH MD5", f"HASH {path}"]
    if re.search(r"^\s*XMD5\b", features, re.MULTILINE):
        return [f"XMD5 {path}"]
    return None


def _md5(ftp: ftplib.FTP, path: str) -> str | None:
    """The server's MD5 of `path` in hex, when it offers a command for it."""
    reply = ""
    try:
        for command in _md5_commands(ftp, path) or ():
            reply = ftp.sendcmd(command)
    except ftplib.error_perm:
        return None
    found = _MD5.search(reply[4:]) if reply else None
    return found[1].lower() if found else None


def _make_folders(ftp: ftplib.FTP, folder: str) -> None:
    """Make `folder` and those above it that are missing (a folder upload's layout)."""
    parts = [p for p in folder.split("/") if p]
    prefix = "/" if folder.startswith("/") else ""
    for part in parts:
        prefix += part
        with contextlib.suppress(ftplib.error_perm):  # there already, mostly
            ftp.mkd(prefix)
        prefix += "/"


def _target(url: str) -> str:
    path = server_path(url)
    if not path or path.endswith("/"):
        raise InputError(f"{url} does not name a file to upload to (ftp://host/folder/name)")
    return path
