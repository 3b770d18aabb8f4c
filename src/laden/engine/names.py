"""File names from servers and addresses, made safe to create inside the download folder.

Everything here treats its input as hostile: a name can never contain a path separator, be
`.`/`..`, hold control characters or NUL, exceed the file system's 255-byte limit, or (on
Windows) be a reserved device name.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from email.message import Message
from urllib.parse import unquote, urlsplit

MAX_NAME_BYTES = 255
DEFAULT_NAME = "download"
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT")
                                                     for i in range(1, 10)}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sanitize_filename(name: str | None, *, windows: bool | None = None) -> str | None:
    """A safe single path component made from `name`, or None when nothing usable is left."""
    if not name:
        return None
    windows = sys.platform == "win32" if windows is None else windows
    name = unicodedata.normalize("NFC", name)
    # Only the last component counts: "../../etc/passwd" and "C:\\x\\y" become "passwd", "y".
    name = re.split(r"[/\\]", name)[-1]
    name = _CONTROL.sub("", name).strip().strip(".") if windows else _CONTROL.sub("", name).strip()
    if windows:
        name = re.sub(r'[<>:"|?*]', "_", name)
        if name.split(".")[0].upper() in _WINDOWS_RESERVED:
            name = "_" + name
    if not name or set(name) == {"."}:
        return None
    return _shorten(name)


def _shorten(name: str) -> str:
    """Cut to MAX_NAME_BYTES of UTF-8, keeping the extension when it is short."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 32:
        stem, ext = name, ""
    budget = MAX_NAME_BYTES - len(ext.encode())
    stem = stem.encode()[:budget].decode(errors="ignore")
    return stem + ext


def filename_from_content_disposition(value: str | None) -> str | None:
    """The file name in a Content-Disposition header (RFC 6266: filename* before filename)."""
    if not value:
        return None
    try:
        message = Message()
        message["content-disposition"] = value
        name = message.get_filename()
    except Exception:  # hostile headers must never crash a download; fall back to the URL
        return None
    if isinstance(name, tuple):  # undecodable RFC 2231 value
        name = name[2]
    return sanitize_filename(name) if isinstance(name, str) else None


def filename_from_url(url: str) -> str | None:
    path = urlsplit(url).path
    return sanitize_filename(unquote(path.rsplit("/", 1)[-1]))


def numbered(path: str, number: int) -> str:
    """`name.ext` -> `name.1.ext` (aria2's convention); `archive.tar.gz` -> `archive.1.tar.gz`."""
    folder, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    if stem.endswith(".tar"):
        stem, ext = stem[:-4], ".tar" + ext
    if not stem:
        stem, ext = base, ""
    return os.path.join(folder, f"{stem}.{number}{ext}")


def free_name(path: str, taken: set[str] | None = None) -> str:
    """`path`, or the first `name.N.ext` that exists neither on disk nor in `taken`."""
    from .partfile import PART_SUFFIX

    taken = taken or set()
    candidate = path
    number = 0
    while (
        os.path.lexists(candidate)
        or os.path.lexists(candidate + PART_SUFFIX)
        or candidate in taken
    ):
        number += 1
        candidate = numbered(path, number)
    return candidate
