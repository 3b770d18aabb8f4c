"""Uploads to S3 and S3-compatible stores, through boto3 and `S3Source`'s clients.

A file of at most one part goes in one PutObject. A larger one is a multipart upload created
with `ChecksumAlgorithm=CRC32C` and `ChecksumType=FULL_OBJECT`: each UploadPart carries its
part's CRC32C (the store refuses a part whose bytes do not match), and CompleteMultipartUpload
the whole file's, which the store checks against the object it assembles. "Never overwrite"
is the store's decision, made at the commit: `If-None-Match: *` on PutObject and on
CompleteMultipartUpload, so no check-then-write race.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ..core.errors import (
    DestinationExists,
    InputError,
    LadenError,
    UploadLost,
)
from . import cloud
from .foreign_errors import ErrorTable
from .requests_log import logged_request
from .s3 import botocore_rows
from .statuses import Wording
from .uploads import SentPart, StoredObject, WaitingUpload

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .s3 import S3Source

_WORDING = Wording(
    slow_down="S3 asks for fewer requests ({said})",
    server_error="S3 error for {url}: {said} {message}",
    refused="S3 refused the upload to {url}: {code} {message}",
    statuses={
        403: "access denied to {url}: the credentials are missing or wrong, or they do not "
             "allow writing it",
        404: "no such S3 bucket: {bucket}",
    },
    codes={
        "NoSuchBucket": 404, "NotFound": 404, "404": 404,
        "AccessDenied": 403, "AllAccessDisabled": 403, "403": 403,
        "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403, "ExpiredToken": 403,
        "InvalidToken": 403,
        "SlowDown": 503, "Throttling": 503, "RequestLimitExceeded": 503,
        "InternalError": 500, "RequestTimeout": 408,
    },
    code_lines={
        "SignatureDoesNotMatch": "S3 refused the credentials for {url}: the secret key does "
                                 "not match the access key id (SignatureDoesNotMatch)",
        "InvalidAccessKeyId": "S3 refused the credentials for {url}: the access key id is not "
                              "known to the store (InvalidAccessKeyId)",
    },
)


class S3Uploader:
    """S3's `sources.uploads.Uploader`."""

    min_part = 5 * 1024 * 1024
    max_parts = 10_000
    whole_checksum = "crc32c"

    def __init__(self, source: S3Source) -> None:
        self._source = source

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        bucket, key = _object(url)
        client = self._source.client(options)
        try:
            with logged_request("HEAD", url) as answer:
                head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
                answer.status = 200
        except Exception as exc:  # noqa: BLE001 - translated below
            if _status(exc) == 404:
                return None
            raise _translated(exc, url, bucket) from None
        whole = head.get("ChecksumType") in (None, "FULL_OBJECT")
        crc = head.get("ChecksumCRC32C")
        return StoredObject(int(head["ContentLength"]),
                            crc if crc and whole and "-" not in crc else None)

    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        bucket, key = _object(url)
        request: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body,
                                   "ChecksumAlgorithm": "CRC32C", "ChecksumCRC32C": crc32c}
        if only_new:
            request["IfNoneMatch"] = "*"
        self._call("PutObject", url, bucket, options, request, start=0, end=len(body))

    def begin(self, url: str, options: DownloadOptions, *, file_tag: str) -> str:
        bucket, key = _object(url)
        answer = self._call("CreateMultipartUpload", url, bucket, options, {
            "Bucket": bucket, "Key": key, "ChecksumAlgorithm": "CRC32C",
            "ChecksumType": "FULL_OBJECT"})
        return str(answer["UploadId"])

    def send_part(self, url: str, upload_id: str, number: int, body: bytes | bytearray,
                  crc32c: str,
                  options: DownloadOptions, start: int) -> str:
        bucket, key = _object(url)
        answer = self._call("UploadPart", url, bucket, options, {
            "Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number,
            "Body": body, "ChecksumAlgorithm": "CRC32C", "ChecksumCRC32C": crc32c},
            start=start, end=start + len(body))
        return str(answer["ETag"])

    def parts(self, url: str, upload_id: str, options: DownloadOptions) -> dict[int, str]:
        bucket, key = _object(url)
        found: dict[int, str] = {}
        marker = 0
        while True:
            answer = self._call("ListParts", url, bucket, options, {
                "Bucket": bucket, "Key": key, "UploadId": upload_id,
                "PartNumberMarker": marker})
            for part in answer.get("Parts", ()):
                found[int(part["PartNumber"])] = str(part["ETag"])
            if not answer.get("IsTruncated"):
                return found
            marker = int(answer.get("NextPartNumberMarker") or 0)
            if marker <= 0:
                return found

    def complete(self, url: str, upload_id: str, parts: list[SentPart], crc32c: str,
                 options: DownloadOptions, *, only_new: bool, md5: str | None) -> None:
        bucket, key = _object(url)
        request: dict[str, Any] = {
            "Bucket": bucket, "Key": key, "UploadId": upload_id,
            "ChecksumCRC32C": crc32c, "ChecksumType": "FULL_OBJECT",
            "MultipartUpload": {"Parts": [
                {"PartNumber": p.number, "ETag": p.etag, "ChecksumCRC32C": p.crc32c}
                for p in sorted(parts, key=lambda p: p.number)]},
        }
        if only_new:
            request["IfNoneMatch"] = "*"
        self._call("CompleteMultipartUpload", url, bucket, options, request)

    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        bucket, key = _object(url)
        with contextlib.suppress(UploadLost):  # gone already: what abort wanted
            self._call("AbortMultipartUpload", url, bucket, options, {
                "Bucket": bucket, "Key": key, "UploadId": upload_id})

    def unfinished(self, url: str, options: DownloadOptions) -> list[WaitingUpload]:
        """ListMultipartUploads under `url` (s3://bucket or s3://bucket/prefix), every page."""
        bucket, prefix = cloud.split_address(url)
        if not bucket:
            raise InputError(f"{url} does not name a bucket (s3://bucket/prefix)")
        found: list[WaitingUpload] = []
        markers: dict[str, str] = {}
        while True:
            answer = self._call("ListMultipartUploads", url, bucket, options,
                                {"Bucket": bucket, "Prefix": prefix, **markers})
            for upload in answer.get("Uploads", ()):
                started = upload.get("Initiated")
                found.append(WaitingUpload(
                    cloud.object_url("s3", bucket, str(upload["Key"])),
                    started.timestamp() if hasattr(started, "timestamp") else None,
                    str(upload["UploadId"])))
            if not answer.get("IsTruncated"):
                return found
            markers = {"KeyMarker": str(answer.get("NextKeyMarker") or ""),
                       "UploadIdMarker": str(answer.get("NextUploadIdMarker") or "")}
            if not markers["KeyMarker"]:
                return found

    def _call(self, operation: str, url: str, bucket: str, options: DownloadOptions,
              request: dict[str, Any], *, start: int | None = None, end: int | None = None
              ) -> dict[str, Any]:
        client = self._source.client(options)
        method = getattr(client, _snake(operation))
        try:
            with logged_request(operation, url, start, end) as answer:
                result: dict[str, Any] = method(**request)
                answer.status = result.get("ResponseMetadata", {}).get("HTTPStatusCode")
                return result
        except Exception as exc:  # noqa: BLE001 - translated by the table
            raise _translated(exc, url, bucket) from None


def _object(url: str) -> tuple[str, str]:
    bucket, key = cloud.split_address(url)
    if not bucket or not key or key.endswith("/"):
        raise InputError(f"{url} does not name an object to upload to (s3://bucket/key)")
    return bucket, key


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _translated(exc: Exception, url: str, bucket: str) -> BaseException:
    return ERRORS.translate(exc, url=url, bucket=bucket)


def _client_error(exc: Any, facts: Any) -> LadenError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    url = facts["url"]
    if code == "NoSuchUpload":
        return UploadLost(f"S3 no longer knows the unfinished upload to {url} (it expired or "
                          "was aborted)")
    if code == "PreconditionFailed" or status == 412:
        return DestinationExists(f"{url} exists already, and the conflict policy is fail "
                                 "(S3 refused to replace it)")
    return _WORDING.error(status, code=code, message=error.get("Message") or "", url=url,
                          bucket=facts["bucket"])


ERRORS = ErrorTable(lambda: botocore_rows(_client_error, "invalid S3 request for {url}: {exc}"))
"""botocore's exceptions during an upload. Facts: `url`, `bucket`."""
