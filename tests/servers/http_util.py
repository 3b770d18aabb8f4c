"""HTTP helpers of the test file server: byte ranges, validators, dates."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import socket
from datetime import UTC
from urllib.parse import quote, unquote

# Left as they are when a path goes into a URL: RFC 3986 pchar plus "/", and "%" so that a
# path given already percent-encoded is not encoded twice.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII | re.IGNORECASE)


def path_key(path: str) -> str:
    """Paths are matched percent-decoded, so "/a b" and "/a%20b" name the same file."""
    return unquote(path)


def url_path(path: str) -> str:
    """`path` as it goes into a URL."""
    return quote(path, safe=_PATH_SAFE)


class RangeNotSatisfiable(Exception):
    pass


def parse_range(value: str, total: int) -> tuple[int, int] | None:
    """The half-open [start, stop) a single-range header asks for, or None when the header
    is to be ignored (malformed, another unit, or several ranges: RFC 9110 lets a server
    answer those with the full body). Raises RangeNotSatisfiable for a 416."""
    match = _RANGE_RE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or total == 0:
            raise RangeNotSatisfiable
        return max(0, total - suffix), total
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= total:
        raise RangeNotSatisfiable
    stop = min(int(last) + 1, total) if last else total
    return start, stop


def default_etag(data: bytes) -> str:
    return f'"{hashlib.sha1(data).hexdigest()}"'


def with_etag_suffix(etag: str, suffix: str) -> str:
    """`"abc"` -> `"abc-suffix"` (keeping a W/ prefix): a different tag for the same bytes."""
    if etag.endswith('"'):
        return f'{etag[:-1]}-{suffix}"'
    return f"{etag}-{suffix}"


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(int(timestamp), usegmt=True)


def _same_date(value: str, timestamp: float) -> bool:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    if parsed.tzinfo is None:  # "-0000" parses as naive, but HTTP dates are always UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() == int(timestamp)


def etag_list(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def strong_match(tag: str, etag: str | None) -> bool:
    return etag is not None and not etag.startswith("W/") and tag == etag


def weak_match(tag: str, etag: str | None) -> bool:
    return etag is not None and tag.removeprefix("W/") == etag.removeprefix("W/")


def if_range_matches(value: str, etag: str | None, last_modified: float | None) -> bool:
    """RFC 9110 13.1.5: an entity-tag validator needs a strong match, a date an exact one."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return strong_match(value, etag)
    return last_modified is not None and _same_date(value, last_modified)


def hard_shutdown(sock: socket.socket) -> None:
    """Shut both directions so the peer sees EOF/reset and any thread blocked on this
    socket returns. Calls the plain socket method because SSLSocket.shutdown also drops its
    TLS state, which is not safe while another thread is inside a read on it."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
