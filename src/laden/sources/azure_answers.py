"""What Azure Blob Storage's answers say: the blob a ranged GET describes (size, ETag, the
whole blob's MD5), and whether a later answer is still of the version the probe pinned."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from typing import Any

from ..core.errors import RemoteChanged
from ..core.snapshots import ChecksumInfo
from . import cloud, versions
from .base import RemoteInfo
from .http_headers import parse_content_range

MD5_ORIGIN = "Azure Content-MD5"
"""Where the blob's MD5 comes from, as a download's checksums name it."""


class Answer:
    """Keeps the status and headers of a download's answer (the SDK's properties of a ranged
    download describe the range, not the blob). The SDK asks again when an answer's body is
    cut short, so the last successful answer is the one whose bytes it holds."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: Mapping[str, str] = {}

    def __call__(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        if self.status not in (200, 206) or response.status_code in (200, 206):
            self.status, self.headers = response.status_code, response.headers


def remote_from(url: str, blob: str, headers: Mapping[str, str]) -> RemoteInfo | None:
    """What a ranged GET's headers say of the blob; None without its size or ETag."""
    parsed = parse_content_range(headers.get("content-range"))
    etag = headers.get("etag")
    if parsed is None or parsed[2] is None or not etag:
        return None
    checksums = []
    md5 = _md5_of(headers.get("x-ms-blob-content-md5"))
    if md5 is not None:
        checksums.append(ChecksumInfo("md5", md5, MD5_ORIGIN))
    version_id = headers.get("x-ms-version-id")
    return RemoteInfo(
        url=url,
        final_url=url,
        size=parsed[2],
        supports_ranges=True,
        etag=etag,
        last_modified=headers.get("last-modified"),
        filename=cloud.file_name(blob),
        checksums=tuple(checksums),
        version=etag,
        extra={"blob_type": headers.get("x-ms-blob-type") or "",
               "content_type": headers.get("content-type") or "",
               **({"version_id": version_id} if version_id else {})},
    )


def _md5_of(value: str | None) -> str | None:
    """The hex of a base64 MD5 header; None when it is not one."""
    try:
        digest = base64.b64decode(value or "", validate=True)
    except ValueError:
        return None
    return digest.hex() if len(digest) == 16 else None


class AnswerCheck:
    """Compares each answer's ETag, version id and total size with the probe's.

    The precondition asks Azure to refuse a changed blob; this catches a service, proxy or
    emulator that ignores it, before any of the other version's bytes are read.
    """

    def __init__(self, remote: RemoteInfo, shown_url: str) -> None:
        """`shown_url`: the blob's address as an error names it, never with a SAS."""
        self._pinned = versions.Validators(
            size=remote.size, etag=remote.etag, version=remote.extra.get("version_id"),
            modified=remote.last_modified)
        self._url = shown_url

    def __call__(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        if response.status_code not in (200, 206):
            return  # errors are translated by `ERRORS` once the SDK raises them
        headers = response.headers
        parsed = parse_content_range(headers.get("content-range"))
        if parsed is not None:
            size = parsed[2]
        else:
            length = headers.get("content-length") or ""
            size = int(length) if length.strip().isdigit() else None
        answer = versions.Validators(
            size=size, etag=headers.get("etag"), version=headers.get("x-ms-version-id"),
            modified=headers.get("last-modified"))
        try:
            versions.check_answer(self._pinned, answer, self._url)
        except RemoteChanged:
            with contextlib.suppress(Exception):  # its body will never be read
                response.internal_response.close()
            raise
