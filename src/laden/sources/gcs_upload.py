"""Uploads to Google Cloud Storage: resumable sessions over the source's authorized session.

A file of at most one part goes in one multipart upload whose metadata carries its CRC32C and
MD5, which the service checks. A larger one is a resumable upload session (JSON API,
`uploadType=resumable`): chunks of the part size (a multiple of 256 KiB, as the protocol
wants) are PUT in order with `Content-Range`, each answered 308 with the `Range` the service
holds; the last carries the total size and `X-Goog-Hash` with the whole file's CRC32C and MD5,
so the service checks the object it finalises. A resume asks for the persisted offset with an
empty PUT (`Content-Range: bytes */SIZE`). "Never overwrite" is `ifGenerationMatch=0` on the
upload, which the service enforces when it finalises (412).

The requests are plain HTTP on google-auth's `AuthorizedSession` (shared with `GcsSource`, with
a write scope) rather than google-resumable-media's `ResumableUpload`, which keeps the offset
to itself: here the engine decides where each chunk starts. The session URI is a bearer
capability (anyone holding it may write the object for a week): it is the upload id kept in the
journal, and no message, log line or error carries it; requests are logged by the object's
gs:// address.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..core.errors import DestinationExists, InputError, LadenError, Retryable, UploadLost
from . import cloud
from .gcs import ERRORS as GCS_ERRORS
from .in_order_uploads import FileChecksums
from .requests_log import logged_request
from .statuses import Wording
from .uploads import StoredObject

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .gcs import GcsClients, GcsSource

MiB = 1024 * 1024
_WORDING = Wording(
    slow_down="GCS asks for fewer requests (HTTP {status})",
    server_error="GCS error {status} for {url}{detail}",
    refused="GCS refused the upload to {url} (HTTP {status}){detail}",
    statuses={
        401: "GCS refused the credentials for {url}{detail}",
        403: "access denied to {url}: the credentials are missing or do not allow writing "
             "it{detail}",
        404: "no such GCS bucket: {bucket}",
    },
)
_GONE = (404, 410)
"""A session the service no longer knows: it expired (after a week) or was cancelled."""


class GcsUploader:
    """GCS's `sources.uploads.Uploader`, in order (`in_order_uploads`)."""

    in_order = True
    conflict_at_begin = True  # ifGenerationMatch=0 is the session's
    one_stream = False
    whole_checksum = "crc32c"
    """What a single request's check compares; a session's compares its MD5 too."""
    min_part = 16 * MiB
    """Chunks and the largest single request: Google suggests at least 8 MiB per chunk."""
    max_parts = 100_000
    """Not a service limit (a session has none): it keeps a 1 TB file's chunks near 10 MiB."""

    def __init__(self, source: GcsSource) -> None:
        self._source = source

    def _gcs(self, options: DownloadOptions) -> GcsClients:
        return self._source.clients(options, write=True)

    # -- the object --------------------------------------------------------------------------

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        bucket, key = _object(url)
        gcs = self._gcs(options)
        answer = self._send(gcs, "GET", f"{gcs.endpoint}/storage/v1/b/{_q(bucket)}/o/{_q(key)}",
                            url, "GET metadata")
        if answer.status_code == 404:
            return None
        self._check(answer, url, bucket, (200,))
        meta = answer.json()
        md5 = meta.get("md5Hash")  # base64; StoredObject's is hex
        return StoredObject(int(meta["size"]), meta.get("crc32c") or None,
                            base64.b64decode(md5).hex() if md5 else None)

    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        bucket, key = _object(url)
        gcs = self._gcs(options)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
        boundary = uuid.uuid4().hex
        metadata = json.dumps({"name": key, "crc32c": crc32c, "md5Hash": md5}).encode()
        payload = b"".join((
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            metadata,
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
            bytes(body), f"\r\n--{boundary}--\r\n".encode()))
        target = (f"{gcs.endpoint}/upload/storage/v1/b/{_q(bucket)}/o?uploadType=multipart"
                  + ("&ifGenerationMatch=0" if only_new else ""))
        answer = self._send(gcs, "POST", target, url, "POST upload", data=payload, headers={
            "Content-Type": f"multipart/related; boundary={boundary}"}, start=0, end=len(body))
        self._check(answer, url, bucket, (200, 201))

    # -- a resumable session -----------------------------------------------------------------

    def takes_md5(self, url: str, options: DownloadOptions) -> bool:
        return True  # checked at finalise, and kept with the object

    def begin_in_order(self, url: str, size: int, options: DownloadOptions, *,
                       only_new: bool, file_tag: str) -> str:
        bucket, key = _object(url)
        gcs = self._gcs(options)
        target = (f"{gcs.endpoint}/upload/storage/v1/b/{_q(bucket)}/o?uploadType=resumable"
                  f"&name={_q(key)}" + ("&ifGenerationMatch=0" if only_new else ""))
        headers = {"Content-Type": "application/json; charset=UTF-8",
                   "X-Upload-Content-Type": "application/octet-stream"}
        if size:
            headers["X-Upload-Content-Length"] = str(size)
        answer = self._send(gcs, "POST", target, url, "POST resumable session",
                            data=json.dumps({"name": key}).encode(), headers=headers)
        self._check(answer, url, bucket, (200, 201))
        session = answer.headers.get("Location")
        if not session:
            raise Retryable(f"GCS opened no upload session for {url} (no Location)")
        return str(session)

    def offset(self, url: str, upload_id: str, size: int, options: DownloadOptions) -> int:
        gcs = self._gcs(options)
        answer = self._send(gcs, "PUT", upload_id, url, "PUT session status", data=b"",
                            headers={"Content-Range": f"bytes */{size}"})
        return self._held(answer, url, size)

    def writer(self, url: str, upload_id: str, start: int, end: int, size: int,
               options: DownloadOptions) -> _Chunk:
        return _Chunk(self, url, upload_id, start, end, size, options)

    def send_chunk(self, url: str, upload_id: str, start: int, body: bytearray, size: int,
                   whole: FileChecksums | None, options: DownloadOptions) -> int:
        """PUT bytes `start` to `start + len(body)`; returns what the service then holds."""
        gcs = self._gcs(options)
        end = start + len(body)
        headers = {"Content-Range": f"bytes {start}-{end - 1}/{size if end == size else '*'}"}
        if whole is not None:
            md5 = f",md5={whole.md5}" if whole.md5 else ""
            headers["X-Goog-Hash"] = f"crc32c={whole.crc32c}{md5}"
        answer = self._send(gcs, "PUT", upload_id, url, "PUT chunk", data=body,
                            headers=headers, start=start, end=end)
        return self._held(answer, url, size)

    def commit(self, url: str, upload_id: str, size: int, options: DownloadOptions, *,
               only_new: bool) -> None:
        """Nothing: the last chunk finalised the object."""

    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        gcs = self._gcs(options)
        # A cancelled session answers 499; one already gone 404 or 410: either is what we want.
        answer = self._send(gcs, "DELETE", upload_id, url, "DELETE session")
        answer.close()

    def _held(self, answer: Any, url: str, size: int) -> int:
        """How many bytes the session holds, from a 308's `Range: bytes=0-N` (none: 0), or
        all of them once the object is finalised."""
        status = answer.status_code
        if status in (200, 201):
            return size
        if status == 308:
            held = answer.headers.get("Range", "")
            if not held:
                return 0
            first, _, last = held.removeprefix("bytes=").partition("-")
            if first != "0" or not last.isdigit():
                raise Retryable(f"GCS answered an unreadable Range for the upload to {url}")
            return int(last) + 1
        if status in _GONE:
            raise UploadLost(f"GCS no longer knows the upload session for {url} (it expired "
                             "or was cancelled)")
        bucket, _key = _object(url)
        self._check(answer, url, bucket, ())
        raise AssertionError("unreachable")  # _check raised

    # -- requests ----------------------------------------------------------------------------

    def _send(self, gcs: GcsClients, method: str, target: str, url: str, what: str, *,
              start: int | None = None, end: int | None = None, **request: Any) -> Any:
        """One request, logged by `url` (never by `target`, which may be the session URI)."""
        try:
            with logged_request(what, url, start, end) as logged:
                answer = gcs.session.request(method, target, timeout=self._source.timeout,
                                             **request)
                logged.status = answer.status_code
                return answer
        except Exception as exc:  # noqa: BLE001 - every failure becomes laden's, below
            raise _translated(exc, target, url) from None

    def _check(self, answer: Any, url: str, bucket: str, good: tuple[int, ...]) -> None:
        status = answer.status_code
        if status in good:
            return
        if status == 412:
            raise DestinationExists(f"{url} exists already, and the conflict policy is fail "
                                    "(GCS refused to replace it)")
        raise _WORDING.error(status, url=url, bucket=bucket, detail=_detail(answer),
                             retry_after=_retry_after(answer))


def _translated(exc: Exception, target: str, url: str) -> Exception:
    """laden's error for a request that got no answer: through the GCS table (refused or
    missing credentials say so, and are not retried), except that a failure to connect, and
    any line that would carry `target` (a session URI is a credential), is worded without the
    exception's text."""
    error = GCS_ERRORS.translate(exc, url=url, wording=_WORDING,
                                 bucket=cloud.split_address(url)[0])
    text = str(error)
    secret = urlsplit(target).query
    if isinstance(error, LadenError) and not isinstance(error, Retryable) \
            and target not in text and not (secret and secret in text):
        return error
    host = urlsplit(target).netloc.rpartition("@")[2]
    return Retryable(f"connection to GCS at {host} failed for {url} ({type(exc).__name__})")


class _Chunk:
    """One chunk, gathered in memory and sent in one PUT when it is whole."""

    def __init__(self, uploader: GcsUploader, url: str, session: str, start: int, end: int,
                 size: int, options: DownloadOptions) -> None:
        self._uploader, self._url, self._session = uploader, url, session
        self._start, self._size, self._options = start, size, options
        self._body = bytearray(end - start)
        self._filled = 0

    def write(self, data: memoryview) -> None:
        n = len(data)
        self._body[self._filled:self._filled + n] = data  # a copy: `data` is a reused buffer
        self._filled += n

    def finish(self, whole: FileChecksums | None) -> int:
        if self._filled != len(self._body):
            raise AssertionError(f"a chunk of {len(self._body)} bytes finished at {self._filled}")
        return self._uploader.send_chunk(self._url, self._session, self._start, self._body,
                                         self._size, whole, self._options)

    def abort(self) -> None:
        self._body = bytearray()


def _object(url: str) -> tuple[str, str]:
    bucket, key = cloud.split_address(url)
    if not bucket or not key or key.endswith("/"):
        raise InputError(f"{url} does not name an object to upload to (gs://bucket/object)")
    return bucket, key


def _q(text: str) -> str:
    return quote(text, safe="")


def _detail(answer: Any) -> str:
    """The service's own message from a JSON error body, on one line."""
    try:
        message = answer.json().get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    line = str(message).strip().splitlines()[0][:200] if str(message).strip() else ""
    return f": {line}" if line else ""


def _retry_after(answer: Any) -> float | None:
    value = answer.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None
