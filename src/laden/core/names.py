"""File names from servers and addresses, made safe to create inside the download folder.

Everything here treats its input as hostile: a name can never contain a path separator, be
`.`/`..`, hold control characters or NUL, hold invisible characters that reorder or hide text
(so `invoice\\u202egpj.exe` cannot pass for a picture), exceed the file system's 255-byte limit,
or (on Windows) be a reserved device name.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Container
from urllib.parse import unquote, urlsplit

MAX_NAME_BYTES = 255 - 16
"""The file systems' 255-byte limit, less room for `.laden-part` and a `.N` from renaming."""
DEFAULT_NAME = "download"
PART_SUFFIX = ".laden-part"
"""What a download's partial file adds to its final name."""
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT")
                                                     for i in range(1, 10)}
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Dropped from names: C0 and C1 controls, DEL, and format characters (bidi embeddings,
overrides, isolates and marks, zero-width spaces and joiners, the byte order mark), which can
make a name show as something it is not; and line and paragraph separators."""


def sanitize_filename(name: str | None, *, windows: bool | None = None) -> str | None:
    """A safe single path component made from `name`, or None when nothing usable is left."""
    if not name:
        return None
    windows = sys.platform == "win32" if windows is None else windows
    # A lone surrogate (from a badly decoded header) cannot be written as a file name: "?".
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = unicodedata.normalize("NFC", name)
    # Only the last component counts: "../../etc/passwd" and "C:\\x\\y" become "passwd", "y".
    name = re.split(r"[/\\]", name)[-1]
    name = _without_hidden(name).strip()
    # Windows drops trailing dots and spaces itself, so "a. ." would not be the name asked for.
    while windows and name != name.strip().strip("."):
        name = name.strip().strip(".")
    if windows:
        name = re.sub(r'[<>:"|?*]', "_", name)
        if name.split(".")[0].upper() in _WINDOWS_RESERVED:
            name = "_" + name
    if not name or set(name) == {"."}:
        return None
    return _shorten(name)


def _without_hidden(name: str) -> str:
    if name.isprintable():  # the usual name: nothing to look up character by character
        return name
    return "".join(c for c in name if unicodedata.category(c) not in _HIDDEN)


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


_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def filename_from_content_disposition(value: str | None) -> str | None:
    """The file name in a Content-Disposition header (RFC 6266: filename* before filename)."""
    if not value:
        return None
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(name.lower(), raw)
    extended = params.get("filename*")
    if extended is not None:
        decoded = _decode_extended(extended)
        if decoded:
            return sanitize_filename(decoded)
    return sanitize_filename(params.get("filename"))


def _decode_extended(value: str) -> str | None:
    """RFC 8187 `charset'language'percent-encoded` -> text; None when malformed."""
    charset, found, rest = value.partition("'")
    _language, found_again, encoded = rest.partition("'")
    if not (found and found_again):
        return None
    try:
        return unquote(encoded, encoding=charset.strip() or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


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


def free_name(path: str, taken: Container[str] = ()) -> str:
    """`path`, or the first `name.N.ext` that exists neither on disk nor in `taken`."""
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
