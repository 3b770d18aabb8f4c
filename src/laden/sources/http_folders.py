"""HTTP folders: the files a server's folder pages link to, walked the way `wget -r -np` and
rclone's http backend walk them (nginx, Apache and lighttpd indexes, `python -m http.server`,
or any HTML page of links).

An http(s) address names a folder only when a glob, include or exclude comes with it
(`--glob`, a manifest item's `glob`): an address ending in `/` is as often a page as a folder,
and a page is what `laden get URL` saves. Each page is fetched following redirects (`/data`
answers with a redirect to `/data/`) and read as HTML. A link is kept when it stays on the
folder's scheme, host and port, under the folder's path, without a query (Apache's "sort by"
links have one): ending in `/` it is a folder to walk, else a file. Sizes are not taken from
the pages (they show them rounded, when at all): each file's probe finds its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from ..core.errors import Permanent
from ..core.options import DownloadOptions
from ..core.urls import strip_credentials
from . import listing
from .base import ListedObject

if TYPE_CHECKING:
    from .http import HttpSource

log = logging.getLogger(__name__)

MAX_PAGE = 32 << 20
"""A folder page larger than this is refused: 32 MiB of HTML links a few hundred thousand
files; a page larger than that is a file, not a folder."""
MAX_PAGES = 10_000
"""Folder pages walked at most under one address: a server whose links loop (a symbolic link
to a parent folder in an index) would otherwise be walked without end."""
MAX_FILES = 1_000_000
"""Files taken from one walk at most: pages are the server's to write, and a million links
already make a listing of a few hundred MiB in memory."""
MAX_DEPTH = 32
"""Folders nested deeper than this under the address are not walked (and said so)."""
HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_folder(options: DownloadOptions) -> bool:
    """True when these options make an http(s) address a folder (see the module docstring)."""
    return any(options.source_settings.get(name) for name in listing.FILTER_SETTINGS)


def walk(source: HttpSource, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
    """The files under the folder at `url` that its filters select, all checked before any
    is given (see `listing.expand`).

    Raises:
        Permanent: a page that is not HTML or too large, too many pages, nothing selected.
        Retryable: a page that could not be fetched now.
    """
    shown = strip_credentials(url)
    final, page = _fetch(source, url, options)
    root = urlsplit(final)
    folder = unquote(root.path).lstrip("/")
    if folder and not folder.endswith("/"):
        folder += "/"
    chosen = listing.selection(folder, options)
    files: dict[str, str] = {}
    seen = {folder}
    pending = [(final, page)]
    pages = 1
    while pending:
        at, html = pending.pop()
        for link in links(html, at):
            parts = urlsplit(link)
            if (parts.scheme, _origin(parts)) != (root.scheme, _origin(root)) or parts.query:
                continue
            key = unquote(parts.path).lstrip("/")
            if not key.startswith(chosen.base) or key in seen:
                continue
            plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            if not key.endswith("/"):
                files.setdefault(key, plain)
                if len(files) > MAX_FILES:
                    raise Permanent(f"{shown}: more than {MAX_FILES:,} files; choose a folder "
                                    "further down")
                continue
            seen.add(key)
            relative = key[len(chosen.base):]
            if relative.count("/") > MAX_DEPTH:
                log.warning("not walking %s: deeper than %d folders under %s",
                            strip_credentials(plain), MAX_DEPTH, shown)
                continue
            if not chosen.may_hold(relative):
                continue
            pages += 1
            if pages > MAX_PAGES:
                raise Permanent(f"{shown}: more than {MAX_PAGES:,} folder pages; choose a "
                                "folder further down, or fewer files with --glob")
            pending.append(_fetch(source, _with_userinfo(plain, url), options))
    return listing.expand(shown, ((key, None) for key in files), chosen,
                          lambda key: _with_userinfo(files[key], url))


def links(page: str, at: str) -> list[str]:
    """The addresses the links of an HTML page lead to, resolved against the page's address
    (or its <base href>), fragments dropped."""
    parser = _Links()
    parser.feed(page)
    parser.close()
    base = urljoin(at, parser.base) if parser.base else at
    found = []
    for href in parser.hrefs:
        try:
            target = urljoin(base, href.strip())
        except ValueError:  # an address that cannot be read ("http://[bad")
            continue
        found.append(target.partition("#")[0])
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "base"):
            return
        href = dict(attrs).get("href")
        if not href:
            return
        if tag == "a":
            self.hrefs.append(href)
        elif self.base is None:
            self.base = href


def _fetch(source: HttpSource, url: str, options: DownloadOptions) -> tuple[str, str]:
    """(the page's address after redirects, its text)."""
    final, content_type, body = source.folder_page(url, options, MAX_PAGE)
    kind, _, params = content_type.partition(";")
    kind = kind.strip().lower()
    if kind not in HTML_TYPES and (kind or not body.lstrip()[:1] == b"<"):
        raise Permanent(f"{strip_credentials(final)} is not a folder page ({kind or 'no type'}"
                        "); give the folder's address, or no --glob to download the file")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        return final, body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return final, body.decode("utf-8", errors="replace")


def _origin(parts: object) -> tuple[str | None, int | None]:
    """Host and port, without any user:password@ (an index's links carry none)."""
    try:
        return parts.hostname, parts.port  # type: ignore[attr-defined]
    except ValueError:  # a port that is not a number
        return None, None


def _with_userinfo(link: str, folder_url: str) -> str:
    """`link` with the folder address's user:password@, when it has one: `add` moves them into
    the options again, and the journal never sees them (as for FTP folders)."""
    folder = urlsplit(folder_url)
    userinfo, at, _ = folder.netloc.rpartition("@")
    parts = urlsplit(link)
    if not at or (parts.scheme, _origin(parts)) != (folder.scheme, _origin(folder)):
        return link  # a folder redirected elsewhere: its credentials stay with its origin
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query,
                       parts.fragment))
