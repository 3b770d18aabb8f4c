"""What the object-store sources (S3, GCS, Azure Blob, Hugging Face) share.

Addresses. `SCHEME://BUCKET/KEY`: the key is percent-decoded (`%20` for a space, since an
address may not contain one), and `?`, `#`, `[` belong to the key, not to a query.

Folders and globs: `listing`, the filter every source that lists goes through.

Settings and credentials. A setting is looked up in the download's `source_settings`, then in
the settings file (`Config.extra`): the same flat keys everywhere (`s3_endpoint_url`,
`hf_token_file`, ...), each declared once with its source (`core.known_sources`), where the
command line's flags and a manifest's fields come from. A credential comes from the download's
`secrets` (never journalled), or from the file its `*_file` setting names, read when a client
is made (so a rotated secret file is picked up), or from the SDK's own chain.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote

from ..core.config import Config
from ..core.errors import InputError
from ..core.names import sanitize_filename
from ..core.options import DownloadOptions

# A key is quoted in the addresses laden makes, keeping the characters S3 and GCS users write.
KEY_SAFE = "/~!$&'()*+,;=:@"

T = TypeVar("T")


# -- addresses -------------------------------------------------------------------------------


def split_address(url: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"), the key percent-decoded."""
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, unquote(key)


def object_url(scheme: str, bucket: str, key: str) -> str:
    return f"{scheme}://{bucket}/{quote(key, safe=KEY_SAFE)}"


# -- settings and credentials ----------------------------------------------------------------


def setting(options: DownloadOptions, config: Config | None, name: str) -> Any:
    """A source setting: the download's own, else the settings file's; None when unset."""
    value = options.source_settings.get(name)
    if value in (None, "") and config is not None:
        value = config.extra.get(name)
    return None if value in (None, "") else value


def secret(options: DownloadOptions, config: Config | None, name: str) -> str | None:
    """A credential: from the download's secrets, else from the file `<name>_file` names."""
    value = options.secrets.get(name)
    if value:
        return value
    path = setting(options, config, f"{name}_file")
    return read_secret_file(str(path), name) if path else None


MAX_SECRET_BYTES = 64 * 1024
"""The largest secret file read: far above any key, token or connection string."""


def read_secret_file(path: str, name: str) -> str:
    """The credential in the file at `path` (a `*_file` setting, a mounted secret).

    Whatever the path names, this returns or raises promptly: a FIFO or a device is refused
    without waiting on it, and at most `MAX_SECRET_BYTES` are read. One trailing newline is
    dropped, as editors and `echo` add it; a NUL, CR or LF left inside is refused, since it
    would end up in a header or a signature.

    Raises:
        InputError: naming the file (never its contents) and what is wrong with it.
    """
    path = os.path.expanduser(path)
    where = _where(path, name)
    data = read_small_file(path, name, MAX_SECRET_BYTES)
    try:
        value = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise InputError(f"{where} is empty")
    if any(c in value for c in "\x00\r\n"):
        raise InputError(f"{where} holds more than one line (or a NUL): a secret is one line")
    return value


def _where(path: str, name: str) -> str:
    return f"the {name.replace('_', ' ')} file {path if len(path) <= 200 else path[:200] + '…'}"


def read_small_file(path: str, name: str, limit: int) -> bytes:
    """The bytes of a small regular file (a secret, a credentials JSON), at most `limit`.

    Returns or raises promptly whatever the path names: a FIFO or a device is refused without
    waiting on it, and no more than `limit` bytes are ever read.
    """
    where = _where(path, name)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # after the open: no swapping in between
            raise InputError(f"{where} is not a regular file")
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {where}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"{where} is larger than {limit // 1024} KiB")
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def flag(options: DownloadOptions, config: Config | None, name: str) -> bool:
    value = setting(options, config, name)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class ClientCache(Generic[T]):
    """One SDK client per (endpoint, credentials), made on first use; thread-safe.

    Clients are made under the lock: SDK sessions are not safe to build clients from two
    threads at once, and this happens once per key.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], T] = {}

    def get(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make()
            return client

    def clear(self) -> list[T]:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        return clients


def http_date(value: Any) -> str | None:
    """A datetime from an SDK as the HTTP date the journal keeps for Last-Modified."""
    if value is None:
        return None
    from datetime import UTC
    from email.utils import format_datetime

    try:
        return format_datetime(value.astimezone(UTC), usegmt=True)
    except (AttributeError, TypeError, ValueError):
        return str(value)


def file_name(key: str) -> str | None:
    return sanitize_filename(key.rsplit("/", 1)[-1])
