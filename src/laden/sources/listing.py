"""The one listing filter every source that lists folders goes through (S3, GCS, Azure Blob,
Hugging Face, FTP).

A folder address names many files: its path is empty, ends in `/` or holds a glob (`*`, `?`,
`[`), or it comes with a `glob`, `include` or `exclude` setting. The glob language is the one of
.gitignore: `*` and `?` stay inside one path segment, `**` crosses segments, and a pattern
without `/` matches the file name at any depth (`--glob '*.csv'` finds `a.csv` and `x/y/b.csv`;
`data/*.csv` only the direct children). A file is wanted when it matches the glob in the
address, the `glob` setting, at least one `include` (when any is given) and no `exclude`.
Each file keeps its path relative to the folder part of the address; a name that would land
outside the destination (`..`, an absolute path, a backslash) refuses the whole listing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError, Permanent
from ..core.names import sanitize_filename
from ..core.options import DownloadOptions
from ..core.urls import strip_credentials, without_signatures
from .base import FILTER_SETTINGS, ListedObject

GLOB_CHARS = frozenset("*?[")


def has_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


@dataclass(frozen=True)
class Selection:
    """Which files under a folder address to fetch, and where each one goes."""

    prefix: str
    """What every wanted path starts with (the listing prefix)."""
    base: str
    """The folder part of the address: relative paths start after it."""
    pattern: re.Pattern[str] | None = None
    """Matched against the whole path (a glob in the address)."""
    relative: re.Pattern[str] | None = None
    """Matched against the relative path (the `glob` setting)."""
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    anchored: tuple[str, ...] = ()
    """Globs relative to `base` that every wanted path must match, as written: they tell a
    walk which sub-folders can hold nothing wanted (see `may_hold`)."""
    anchored_include: tuple[str, ...] = ()
    """The `include` globs as written, when every one is anchored (else empty)."""

    def wants(self, path: str) -> bool:
        """True when the file at `path` (the full key or server path) is to be fetched."""
        if not path.startswith(self.prefix) or path.endswith("/"):
            return False  # "folder/" markers that consoles create are not files
        relative = path[len(self.base):]
        if self.pattern is not None and not self.pattern.fullmatch(path):
            return False
        if self.relative is not None and not self.relative.fullmatch(relative):
            return False
        if self.include and not any(p.fullmatch(relative) for p in self.include):
            return False
        return not any(p.fullmatch(relative) for p in self.exclude)

    def may_hold(self, folder: str) -> bool:
        """False when no file under `folder` (relative to `base`) can be wanted, so a source
        that walks folders one by one (FTP) need not list it."""
        if not all(may_match_below(p, folder) for p in self.anchored):
            return False
        return not self.anchored_include or any(
            may_match_below(p, folder) for p in self.anchored_include)


def is_folder_key(key: str, options: DownloadOptions) -> bool:
    """True when `key` (the path part of an address) with these options names many files."""
    settings = options.source_settings
    return (
        key == ""
        or key.endswith("/")
        or has_glob(key)
        or any(settings.get(name) for name in FILTER_SETTINGS)
    )


def selection(key: str, options: DownloadOptions) -> Selection:
    """The selection a folder address (see `is_folder_key`) and its settings make.

    Raises:
        InputError: a glob that cannot be read.
    """
    settings = options.source_settings
    pattern = None
    anchored: list[str] = []
    if has_glob(key):
        first = min(key.index(c) for c in GLOB_CHARS if c in key)
        base = key[: key.rfind("/", 0, first) + 1]
        pattern = compile_glob(key, anchored=True)
        anchored.append(key[len(base):])
    elif key and not key.endswith("/"):
        base = key + "/"  # `s3://b/data --glob '*.csv'`: data is a folder
    else:
        base = key
    glob = settings.get("glob")
    if glob and _is_anchored(glob):
        anchored.append(glob)
    include = _patterns(settings.get("include"))
    return Selection(
        prefix=base,
        base=base,
        pattern=pattern,
        relative=compile_glob(glob) if glob else None,
        include=tuple(compile_glob(g) for g in include),
        exclude=tuple(compile_glob(g) for g in _patterns(settings.get("exclude"))),
        anchored=tuple(anchored),
        anchored_include=tuple(include) if all(map(_is_anchored, include)) else (),
    )


def expand(
    url: str, items: Iterable[tuple[str, int | None]], chosen: Selection,
    make_url: Callable[[str], str],
) -> Iterator[ListedObject]:
    """Listed (path, size) pairs -> the files to download, all checked before any is given.

    Raises:
        Permanent: nothing matches, or a name would escape the destination.
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
        shown = without_signatures(strip_credentials(url))  # an FTP folder's keeps user:password
        raise Permanent(
            f"refusing {shown}: its name {relative!r} would be saved outside the destination "
            "folder or is not a usable file name"
        )


def _patterns(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _is_anchored(pattern: str) -> bool:
    """True when `compile_glob` anchors `pattern` at the folder (it holds a `/`)."""
    return "/" in pattern.lstrip("/").rstrip("/")


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str, *, anchored: bool = False) -> re.Pattern[str]:
    """A regular expression for a .gitignore-style glob (see the module docstring).

    Raises:
        InputError: a pattern the regular expression engine refuses.
    """
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


def may_match_below(pattern: str, folder: str) -> bool:
    """False when no file under `folder` (a relative path) can match the anchored `pattern`."""
    pat = [p for p in pattern.strip("/").split("/") if p]
    parts = [p for p in folder.strip("/").split("/") if p]
    for index, part in enumerate(parts):
        if index >= len(pat) or "**" in pat[index]:
            return index < len(pat)
        if not compile_glob(pat[index], anchored=True).fullmatch(part):
            return False
    return len(pat) > len(parts)
