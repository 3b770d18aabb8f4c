"""What the object-store sources (S3, GCS, Azure Blob, Hugging Face) share.

Addresses. `SCHEME://BUCKET/KEY`: the key is percent-decoded (`%20` for a space, since an
address may not contain one), and `?`, `#`, `[` belong to the key, not to a query.

Folders and globs. An address whose key is empty, ends in `/` or holds a glob (`*`, `?`, `[`)
names many objects; so does any address given with a `glob`, `include` or `exclude` setting.
The glob language is the one of .gitignore: `*` and `?` stay inside one path segment, `**`
crosses segments, and a pattern without `/` matches the file name at any depth
(`--glob '*.csv'` finds `a.csv` and `x/y/b.csv`; `data/*.csv` only the direct children).
Each object keeps its path relative to the folder part of the address; a key that would land
outside the destination (`..`, an absolute path, a backslash) refuses the whole listing.

Settings and credentials. A setting is looked up in the download's `source_settings`, then in
the settings file (`Config.extra`): the same flat keys everywhere (`s3_endpoint_url`,
`hf_token_file`, ...). A credential comes from the download's `secrets` (never journalled), or
from the file its `*_file` setting names, read when a client is made (so a rotated secret file
is picked up), or from the SDK's own chain.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote

from ..engine.config import Config
from ..engine.errors import InputError, Permanent
from ..engine.names import sanitize_filename
from ..engine.options import DownloadOptions
from .base import ListedObject

GLOB_CHARS = frozenset("*?[")
# A key is quoted in the addresses laden makes, keeping the characters S3 and GCS users write.
_KEY_SAFE = "/~!$&'()*+,;=:@"

T = TypeVar("T")


# -- addresses -------------------------------------------------------------------------------


def split_address(url: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"), the key percent-decoded."""
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, unquote(key)


def object_url(scheme: str, bucket: str, key: str) -> str:
    return f"{scheme}://{bucket}/{quote(key, safe=_KEY_SAFE)}"


def has_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


# -- folders and globs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which objects under a folder address to fetch, and where each one goes."""

    prefix: str
    """What every wanted key starts with (the listing prefix)."""
    base: str
    """The folder part of the address: relative paths start after it."""
    pattern: re.Pattern[str] | None = None
    """Matched against the whole key (a glob in the address)."""
    relative: re.Pattern[str] | None = None
    """Matched against the relative path (the `glob` setting)."""
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def wants(self, key: str) -> bool:
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False  # "folder/" markers that consoles create are not files
        relative = key[len(self.base):]
        if self.pattern is not None and not self.pattern.fullmatch(key):
            return False
        if self.relative is not None and not self.relative.fullmatch(relative):
            return False
        if self.include and not any(p.fullmatch(relative) for p in self.include):
            return False
        return not any(p.fullmatch(relative) for p in self.exclude)


def is_folder_key(key: str, options: DownloadOptions) -> bool:
    settings = options.source_settings
    return (
        key == ""
        or key.endswith("/")
        or has_glob(key)
        or any(settings.get(name) for name in ("glob", "include", "exclude"))
    )


def selection(key: str, options: DownloadOptions) -> Selection:
    """The selection a folder address (see `is_folder_key`) and its settings make."""
    settings = options.source_settings
    pattern = None
    if has_glob(key):
        first = min(key.index(c) for c in GLOB_CHARS if c in key)
        base = key[: key.rfind("/", 0, first) + 1]
        pattern = compile_glob(key, anchored=True)
    elif key and not key.endswith("/"):
        base = key + "/"  # `s3://b/data --glob '*.csv'`: data is a folder
    else:
        base = key
    glob = settings.get("glob")
    return Selection(
        prefix=base,
        base=base,
        pattern=pattern,
        relative=compile_glob(glob) if glob else None,
        include=tuple(compile_glob(g) for g in _patterns(settings.get("include"))),
        exclude=tuple(compile_glob(g) for g in _patterns(settings.get("exclude"))),
    )


def _patterns(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str, *, anchored: bool = False) -> re.Pattern[str]:
    """A regular expression for a .gitignore-style glob (see the module docstring)."""
    text = pattern.lstrip("/")
    if not anchored and "/" not in text.rstrip("/"):
        text = "**/" + text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (close := _class_end(text, i)) > 0:
            inner = text[i + 1 : close]
            negate = inner[:1] in ("!", "^")
            inner = inner[1:] if negate else inner
            body = inner.replace("\\", "\\\\")
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
            i = close + 1
        else:
            out.append(re.escape(c))
            i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise InputError(f"invalid glob {pattern!r}: {exc}") from None


def _class_end(text: str, start: int) -> int:
    """Index of the `]` closing the class that opens at `start`, or -1."""
    i = start + 1
    if i < len(text) and text[i] in "!^":
        i += 1
    if i < len(text) and text[i] == "]":
        i += 1
    return text.find("]", i)


def expand(
    url: str, items: Iterable[tuple[str, int | None]], chosen: Selection,
    make_url: Callable[[str], str],
) -> Iterator[ListedObject]:
    """Listed (key, size) pairs -> the objects to download, all checked before any is given.

    Raises Permanent when nothing matches or when a key would escape the destination.
    """
    found: list[ListedObject] = []
    for key, size in items:
        if not chosen.wants(key):
            continue
        relative = key[len(chosen.base):]
        check_relative_path(relative, make_url(key))
        found.append(ListedObject(url=make_url(key), relative_path=relative, size=size))
    if not found:
        raise Permanent(f"nothing to download: no files under {url} match")
    return iter(found)


def check_relative_path(relative: str, url: str) -> None:
    """Refuse a remote name that would be written outside the destination folder."""
    parts = relative.split("/")
    bad = (
        relative.startswith("/")
        or "\\" in relative
        or any(p in (".", "..") for p in parts)
        or any(p and sanitize_filename(p, windows=False) != p for p in parts)
    )
    if bad:
        raise Permanent(
            f"refusing {url}: its name {relative!r} would be saved outside the destination "
            "folder or is not a usable file name"
        )


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
