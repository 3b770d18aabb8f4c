"""The services the trust suite's upload section runs against, each behind one small driver.

A driver starts nothing itself: it takes the emulator from the suite's fixtures, makes a fresh
bucket (or container) and answers what the tests ask of the service: the object as stored, the
unfinished uploads and the parts they hold, losing an upload behind laden's back, and refusing
every request for a while. laden itself is aimed at `port` through a relay that counts the
bytes it sends, so "bytes re-sent" is measured the same way for every service.

Adding a service: a driver class here, and one line in `SERVICES`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import pytest

from laden.engine.uploading.parts import MiB, part_size


class UploadService(Protocol):
    """What the upload section asks of a service (see `S3Service` for each one's meaning)."""

    name: str
    part: int
    forbidden_words: tuple[str, ...]

    @property
    def port(self) -> int: ...
    def args(self, endpoint: str) -> list[str]: ...
    def options(self, endpoint: str) -> dict[str, Any]: ...
    def url(self, key: str) -> str: ...
    def stored(self, key: str) -> bytes | None: ...
    def unfinished(self, key: str) -> list[str]: ...
    def held(self, key: str, upload_id: str) -> dict[int, str]: ...
    def lose(self, key: str) -> int: ...
    def slow_commit(self, seconds: float) -> AbstractContextManager[threading.Event]: ...
    def commit_answer_lost(self) -> AbstractContextManager[None]: ...
    def forbidden(self) -> AbstractContextManager[None]: ...


class S3Service:
    """S3 on moto (tests/servers/s3.py)."""

    name = "s3"
    part: ClassVar[int] = part_size(0, 5 * MiB, 10_000)
    """laden's part size for a test file: 8 MiB."""
    forbidden_words = ("S3 refused the credentials", "access denied")
    """What laden's one line says when every request is refused."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.server: Any = request.getfixturevalue("s3_server")
        self.bucket: str = request.getfixturevalue("s3_bucket")
        self.client = self.server.client()

    @property
    def port(self) -> int:
        return urlsplit(self.server.endpoint_url).port or 80

    def args(self, endpoint: str) -> list[str]:
        """`laden put` flags aiming it at `endpoint` (the relay)."""
        return ["--s3-endpoint-url", endpoint]

    def options(self, endpoint: str) -> dict[str, Any]:
        """`add_upload` keyword arguments aiming it at `endpoint`."""
        return {"source_settings": {"s3_endpoint_url": endpoint}}

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def stored(self, key: str) -> bytes | None:
        """The committed object, or None when there is none."""
        listed = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        if key not in {o["Key"] for o in listed}:
            return None
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def unfinished(self, key: str) -> list[str]:
        """The ids of the unfinished uploads to `key`."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket)
        return [u["UploadId"] for u in answer.get("Uploads", ()) if u["Key"] == key]

    def held(self, key: str, upload_id: str) -> dict[int, str]:
        """The parts the service holds for an unfinished upload: number -> tag."""
        answer = self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return {p["PartNumber"]: p["ETag"] for p in answer.get("Parts", ())}

    def lose(self, key: str) -> int:
        """Abort every unfinished upload to `key`, as a lifecycle rule or another tool would;
        how many there were."""
        found = self.unfinished(key)
        for upload_id in found:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return len(found)

    @contextmanager
    def slow_commit(self, seconds: float) -> Iterator[threading.Event]:
        """While inside, a commit takes `seconds` at the service, during which the upload is no
        longer listed and the object is not there yet: what S3 does while it finishes a large
        object. Yields an event set when a commit reaches the service."""
        import moto.s3.models as models

        original = models.S3Backend.complete_multipart_upload
        arrived = threading.Event()

        def complete(backend: Any, bucket_name: str, multipart_id: str, body: Any) -> Any:
            bucket = backend.get_bucket(bucket_name)
            multipart = bucket.multiparts.pop(multipart_id)
            arrived.set()
            time.sleep(seconds)
            bucket.multiparts[multipart_id] = multipart
            return original(backend, bucket_name, multipart_id, body)

        models.S3Backend.complete_multipart_upload = complete  # type: ignore[method-assign]
        try:
            yield arrived
        finally:
            models.S3Backend.complete_multipart_upload = original  # type: ignore[method-assign]

    @contextmanager
    def commit_answer_lost(self) -> Iterator[None]:
        """While inside, a commit succeeds but its answer is lost and the client asks again,
        which the service answers as it does for an upload it no longer knows (S3: a retried
        CompleteMultipartUpload after one that succeeded gets NoSuchUpload)."""
        import moto.s3.models as models
        from moto.s3.exceptions import NoSuchUpload

        original = models.S3Backend.complete_multipart_upload

        def complete(backend: Any, bucket_name: str, multipart_id: str, body: Any) -> Any:
            original(backend, bucket_name, multipart_id, body)
            raise NoSuchUpload(upload_id=multipart_id)

        models.S3Backend.complete_multipart_upload = complete  # type: ignore[method-assign]
        try:
            yield
        finally:
            models.S3Backend.complete_multipart_upload = original  # type: ignore[method-assign]

    @contextmanager
    def forbidden(self) -> Iterator[None]:
        """Every request answered 403 while inside: moto's own authorization switched on. Its
        IAM knows no user for the test key, so it answers as S3 does to a revoked key (403
        InvalidAccessKeyId); the test's own client is refused too until the block ends."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before


SERVICES: dict[str, Callable[[pytest.FixtureRequest], UploadService]] = {
    "s3": S3Service,
}
"""Each service the upload section runs against (Azure on Azurite and GCS on the resumable
session test server join with their uploaders: a driver above and one line here)."""
