"""Reading the HTTP headers laden relies on: Content-Range, Retry-After and published digests.

Servers get these wrong in every possible way, so each parser returns None (or nothing) for
anything it does not understand instead of raising.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from ..core.checksums import algorithm_name, normalise_digest
from ..core.errors import InputError
from ..core.snapshots import ChecksumInfo
from .versions import opaque_tag

_DIGITS = re.compile(r"[0-9]+")
_CONTENT_RANGE = re.compile(
    r"^\s*bytes\s+(?:([0-9]{1,19})-([0-9]{1,19})|\*)\s*/\s*([0-9]{1,19}|\*)\s*$", re.IGNORECASE)


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """`bytes 0-99/1234` -> (0, 100, 1234): start, end (exclusive), total (None when `*`)."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if not match:
        return None
    first, last, total = match.groups()
    start = int(first) if first is not None else None
    end = int(last) + 1 if last is not None else None
    if start is not None and end is not None and end <= start:
        return None
    return start, end, (int(total) if total != "*" else None)


def parse_content_length(value: str | None) -> int | None:
    """A Content-Length of ASCII digits, or None. Repeated equal values (`10, 10`, which a
    proxy may join) count as one; anything else (`abc`, `²`, two different lengths) is None."""
    if not value:
        return None
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1:
        return None
    (length,) = lengths
    if not _DIGITS.fullmatch(length) or len(length) > 19:
        return None
    return int(length)


def strong_validator(etag: str | None, modified: str | None, date: str | None) -> str | None:
    """The validator a resume can pin and send in If-Range: a strong ETag, else a
    Last-Modified at least a second older than the answer's Date (RFC 9110 8.8.2.2: a file
    changed within the second it was served could change again unseen). None when there is
    neither: Apache gives both weak for a file written in that second."""
    if etag and not etag.lstrip().startswith(("W/", "w/")):
        return etag
    if not modified:
        return None
    try:
        changed = parsedate_to_datetime(modified).timestamp()
        served = parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return modified if served - changed >= 1 else None


def changed_version(pinned_etag: str | None, pinned_modified: str | None,
                    headers: Mapping[str, str]) -> str | None:
    """Why an answer's validators show another version than the pinned ones, or None.

    A validator the answer leaves out proves nothing either way; one it sends must match.
    """
    etag = headers.get("etag")
    if pinned_etag and etag and opaque_tag(etag) != opaque_tag(pinned_etag):
        return f"the remote file changed (ETag {pinned_etag} -> {etag})"
    modified = headers.get("last-modified")
    if pinned_modified and modified and modified.strip() != pinned_modified.strip():
        return f"the remote file changed (Last-Modified {pinned_modified} -> {modified})"
    return None


def published_checksums(headers: Mapping[str, str], *, whole_body: bool) -> list[ChecksumInfo]:
    """Checksums of the whole file that the server publishes.

    `Repr-Digest` (RFC 9530) and `Digest` (RFC 3230) describe the whole representation whatever
    range was asked; `Content-MD5` describes only this response's body, so it counts only when
    the body is the whole file (`whole_body`).
    """
    found: list[ChecksumInfo] = []
    for name, value in _dictionary(headers.get("repr-digest")):
        info = _checksum(name, value, "Repr-Digest")
        if info:
            found.append(info)
    if not found:
        for item in (headers.get("digest") or "").split(","):
            name, _, value = item.strip().partition("=")
            info = _checksum(name, value, "Digest")
            if info:
                found.append(info)
    md5 = headers.get("content-md5")
    if md5 and whole_body and not any(c.algorithm == "md5" for c in found):
        info = _checksum("md5", md5, "Content-MD5")
        if info:
            found.append(info)
    return found


def _dictionary(value: str | None) -> list[tuple[str, str]]:
    """Items of a structured-field dictionary whose values are byte sequences (`:base64:`)."""
    if not value:
        return []
    items = []
    for item in value.split(","):
        name, _, rest = item.strip().partition("=")
        rest = rest.split(";", 1)[0].strip()
        if rest.startswith(":") and rest.endswith(":") and len(rest) >= 2:
            items.append((name.strip(), rest[1:-1]))
    return items


def _checksum(name: str, value: str, origin: str) -> ChecksumInfo | None:
    try:
        algorithm = algorithm_name(name)
        return ChecksumInfo(algorithm, normalise_digest(algorithm, value), origin)
    except InputError:
        return None
