"""What Google Cloud Storage's answers say: an object's generation, size and hashes (the
validators every read is checked against), the object a media GET describes, and the message
of an error."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ..core.checksums import normalise_digest
from ..core.errors import InputError
from ..core.snapshots import ChecksumInfo
from . import cloud, versions
from .base import RemoteInfo
from .foreign_errors import first_line
from .http_headers import parse_content_range

ORIGINS = {"md5": "GCS md5Hash", "crc32c": "GCS crc32c"}
"""Where each published checksum comes from, as a download's checksums name it."""
ERROR_TEXT_LIMIT = 64 << 10
"""Most of an error answer read for its message: GCS's are a few hundred bytes of JSON."""


def pinned(remote: RemoteInfo) -> versions.Validators:
    # The generation names the bytes; the object's ETag and update time also move when only
    # its metadata changes, so they are not compared.
    return versions.Validators(
        size=remote.size, version=remote.version,
        digests=tuple((c.algorithm, c.expected) for c in remote.checksums))


def validators(headers: Any, status: int) -> versions.Validators:
    """The generation, total size and whole-object hashes an answer carries."""
    size: int | None = None
    if status == 206:
        parsed = parse_content_range(headers.get("content-range"))
        size = parsed[2] if parsed else None
    else:
        stored = headers.get("x-goog-stored-content-length") or headers.get("content-length")
        size = int(stored) if stored and stored.strip().isdigit() else None
    digests = []
    for item in (headers.get("x-goog-hash") or "").split(","):
        name, _, value = item.strip().partition("=")
        algorithm = {"md5": "md5", "crc32c": "crc32c"}.get(name.strip().lower())
        if algorithm and value:
            with contextlib.suppress(InputError):  # not a digest at all: it proves nothing
                digests.append((algorithm, normalise_digest(algorithm, value)))
    return versions.Validators(size=size, version=headers.get("x-goog-generation"),
                               digests=tuple(digests))


def remote_from(url: str, key: str, headers: Any) -> RemoteInfo | None:
    """What a media GET's headers say of the object; None without its generation or size."""
    found = validators(headers, 200)
    generation = (found.version or "").strip()
    if not generation or found.size is None:
        return None
    return RemoteInfo(
        url=url,
        final_url=url,
        size=found.size,
        supports_ranges=True,
        # No ETag: the media answer's need not be the metadata's (which a rerun's check reads),
        # and the generation already names the bytes.
        etag=None,
        last_modified=headers.get("last-modified"),
        filename=cloud.file_name(key),
        checksums=tuple(ChecksumInfo(algorithm, digest, ORIGINS[algorithm])
                        for algorithm, digest in found.digests),
        version=generation,
        extra={"generation": generation, "content_type": headers.get("content-type") or ""},
    )


def with_body(remote: RemoteInfo, response: Any) -> RemoteInfo:
    """`remote` with the object's stored bytes attached, when they arrive whole; a failure
    leaves them to the connections, which retry."""
    import requests
    import urllib3

    try:
        body = response.raw.read(remote.size + 1, decode_content=False)
    except (OSError, requests.RequestException, urllib3.exceptions.HTTPError):
        return remote
    return remote.carrying(body)


def error_detail(response: Any) -> str:
    """": message" from a JSON error answer, else nothing."""
    try:
        text = response.raw.read(ERROR_TEXT_LIMIT, decode_content=True)
        message = json.loads(text)["error"]["message"]
    except Exception:  # noqa: BLE001 - the status alone still says what happened
        return ""
    return f": {first_line(message)}" if isinstance(message, str) and message else ""
