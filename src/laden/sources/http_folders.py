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


def walk(source: HttpSource, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
    """The files under the folder at `url` that its filters select, all checked before any
    is given (see `listing.expand`).

    Raises:
        Permanent: a page that is not HTML or too large, too many pages or files, a folder
            moved to another server while credentials are given, nothing selected.
        Retryable: a page that could not be fetched now.
    """
    shown = strip_credentials(url)
    final, page = _fetch(source, url, options)
    root = urlsplit(final)
    _check_origin(url, final, options)
    folder = unquote(root.path)
    if not folder.endswith("/"):
        folder += "/"
    # Paths are matched relative to the folder: its own name is not a glob, whatever it holds.
    chosen = listing.selection("", options)
    files: dict[str, str] = {}
    seen = {folder}
    pending: list[tuple[str, str | None]] = [(final, page)]  # pages fetched when taken
    while pending:
        at, html = pending.pop()
        if html is None:
            at, html = _fetch(source, _with_userinfo(at, url), options)
        for link in links(html, at):
            parts = urlsplit(link)
            if (parts.scheme, _origin(parts)) != (root.scheme, _origin(root)) or parts.query:
                continue
            path = unquote(parts.path)
            if not path.startswith(folder) or path in seen:
                continue
            relative = path[len(folder):]
            plain = urlunsplit((parts.scheme, _host_port(parts), parts.path, "", ""))
            if not path.endswith("/"):
                files.setdefault(relative, plain)
                if len(files) > MAX_FILES:
                    raise Permanent(f"{shown}: more than {MAX_FILES:,} files; choose a folder "
                                    "further down")
                continue
            seen.add(path)
            if relative.count("/") > MAX_DEPTH:
                log.warning("not walking %s: deeper than %d folders under %s", plain,
                            MAX_DEPTH, shown)
                continue
            if not chosen.may_hold(relative):
                continue
            if len(seen) > MAX_PAGES:
                raise Permanent(f"{shown}: more than {MAX_PAGES:,} folder pages; choose a "
                                "folder further down, or fewer files with --glob")
            pending.append((plain, None))
    return listing.expand(shown, ((relative, None) for relative in files), chosen,
                          lambda relative: _with_userinfo(files[relative], url))


def _check_origin(url: str, final: str, options: DownloadOptions) -> None:
    """A folder page that moved to another server is walked there only without credentials:
    its files would each be asked for with them (an upgrade to HTTPS on the same host is the
    same server, as for redirects of a file)."""
    asked, got = urlsplit(url), urlsplit(final)
    same = _origin(asked)[0] == _origin(got)[0] and (
        (asked.scheme, asked.port) == (got.scheme, got.port)
        or (asked.scheme, got.scheme) == ("http", "https") and asked.port in (None, 80)
        and got.port in (None, 443))
    given = (asked.username is not None or options.username or options.password
             or options.bearer_token or options.headers)
    if not same and given:
        raise Permanent(f"{strip_credentials(url)} moved to {strip_credentials(final)}, another "
                        "server: laden does not send it your credentials or headers; give that "
                        "address instead")


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
    final, content_type, body = source.folder_page(url, options, MAX_PAGE, _check_type)
    _, _, params = content_type.partition(";")
    if not _kind(content_type) and body.lstrip()[:1] != b"<":
        _not_a_page(final, "no type")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        return final, body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return final, body.decode("utf-8", errors="replace")


def _kind(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _check_type(final: str, content_type: str) -> None:
    """Refuse an answer that says it is not HTML before its body is read (a file given with
    --glob by mistake); one that says nothing is read and looked at."""
    kind = _kind(content_type)
    if kind and kind not in HTML_TYPES:
        _not_a_page(final, kind)


def _not_a_page(final: str, kind: str) -> None:
    raise Permanent(f"{strip_credentials(final)} is not a folder page ({kind}); give the "
                    "folder's address, or no --glob to download the file")


def _host_port(parts: object) -> str:
    """The netloc without any user:password@ the link carried."""
    host, port = _origin(parts)
    if host is None:
        return ""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _origin(parts: object) -> tuple[str | None, int | None]:
    """Host and port, without any user:password@ (an index's links carry none)."""
    try:
        return parts.hostname, parts.port  # type: ignore[attr-defined]
    except ValueError:  # a port that is not a number
        return None, None


def _with_userinfo(link: str, folder_url: str) -> str:
    """`link` with the folder address's user:password@, when it has one: `add` moves them into
    the options again, and the journal never sees them (as for FTP folders)."""
    userinfo, at, _ = urlsplit(folder_url).netloc.rpartition("@")
    if not at:
        return link
    parts = urlsplit(link)  # on the folder's server (see `_check_origin`), with no userinfo
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query,
                       parts.fragment))
