"""The services the trust suite's upload section runs against, each behind one small driver.

A driver takes the emulator from the suite's fixtures (or, for the GCS resumable-session
server, starts its own), makes a fresh bucket (or container) and answers what the tests ask of
the service: the object as stored, the unfinished uploads and whether the journal claims more
than they hold, losing an upload behind laden's back, a slow commit, a commit whose answer is
lost, and refusing every request for a while. laden itself is aimed at `port` through a relay
that counts the bytes it sends (`relay`, set by the tests), so "bytes re-sent" is measured the
same way for every service; where the emulator runs in another process, the relay is also
where a commit is slowed or its answer lost.

How the services differ, and so what the tests expect of each:

- S3 and Azure take parts in any order over several connections: after a kill, at most the
  parts in flight (one per connection) are sent again. GCS takes a session's bytes in order
  over one connection, and a resume continues from the offset the service reports: at most
  one chunk is sent again (`in_flight`).
- "The service lost the upload": S3's multipart upload aborted (NoSuchUpload), Azure's
  uncommitted blocks gone (Azure drops them a week after the last was staged, or at another
  writer's commit), GCS's session gone (404: expired after a week, or cancelled).
- 403 mid-upload: S3's key unknown to moto's IAM, Azure's SAS revoked (its container's stored
  access policy removed, which Azurite checks on every request), GCS's test server answering
  403 (its documented `forbidden` switch).

FTP is not here: its bytes go over data connections to ports the server names (PASV), which a
relay of the control port does not see, so "bytes re-sent" cannot be measured the same way;
tests/faults/test_crash_in_order_uploads.py kills its uploads, tests/ftp/ covers the rest.

Adding a service: a driver class here, and one line in `SERVICES`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

import pytest

from laden.engine.uploading.parts import MiB, part_size
from servers.gcs_resumable import GcsResumableServer

if TYPE_CHECKING:
    from .relays import CountingRelay


class UploadService(Protocol):
    """What the upload section asks of a service (see `S3Service` for each one's meaning)."""

    name: str
    part: int
    in_flight: int
    forbidden_words: tuple[str, ...]
    lost_words: tuple[str, ...]
    relay: CountingRelay | None

    @property
    def port(self) -> int: ...
    def args(self, endpoint: str) -> list[str]: ...
    def options(self, endpoint: str) -> dict[str, Any]: ...
    def url(self, key: str) -> str: ...
    def stored(self, key: str) -> bytes | None: ...
    def unfinished(self, key: str) -> list[str]: ...
    def unheld(self, key: str, record: dict[str, Any]) -> list[str]: ...
    def lose(self, key: str) -> int: ...
    def slow_commit(self, seconds: float) -> AbstractContextManager[threading.Event]: ...
    def commit_answer_lost(self) -> AbstractContextManager[None]: ...
    def forbidden(self) -> AbstractContextManager[None]: ...


class S3Service:
    """S3 on moto (tests/servers/s3.py)."""

    name = "s3"
    part: ClassVar[int] = part_size(0, 5 * MiB, 10_000)
    """laden's part size for a test file: 8 MiB."""
    in_flight: ClassVar[int] = 2
    """Parts that may be on their way at a kill: one per connection (the tests use two)."""
    forbidden_words = ("S3 refused the credentials", "access denied")
    """What laden's one line says when every request is refused."""
    lost_words = ("no longer knows the unfinished upload", "starting again from the first byte")
    """What laden keeps with the upload when the service lost it."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.server: Any = request.getfixturevalue("s3_server")
        self.bucket: str = request.getfixturevalue("s3_bucket")
        self.client = self.server.client()
        self.relay: CountingRelay | None = None

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

    def unheld(self, key: str, record: dict[str, Any]) -> list[str]:
        """What the journal's record claims the service holds and it does not."""
        return _unheld_parts(self, key, record)

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


def _unheld_parts(service: S3Service | AzureService, key: str,
                  record: dict[str, Any]) -> list[str]:
    """The journalled parts the service does not hold with the journalled tag."""
    upload = record.get("upload") or {}
    if not upload.get("upload_id") or not upload.get("parts"):
        return []
    held = service.held(key, upload["upload_id"])
    return [f"part {number}" for number, (tag, _crc) in upload["parts"].items()
            if held.get(int(number)) != tag]


class AzureService:
    """Azure Blob on Azurite (tests/servers/azure_blob.py), reached with a SAS bound to the
    container's stored access policy, so that removing the policy revokes it mid-upload.
    Azurite runs in another process: its commits are slowed, and their answers lost, at the
    relay."""

    name = "azure"
    part: ClassVar[int] = part_size(0, 1, 50_000)
    """laden's block size for a test file: 8 MiB."""
    in_flight: ClassVar[int] = 2
    forbidden_words = ("Azure refused access",)
    lost_words = ("no longer holds", "starting again from the first byte")
    POLICY = "laden-trust"
    COMMIT = rb"\APUT \S*[?&]comp=blocklist"
    """Put Block List's request line (Get Block List is a GET)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        from azure.storage.blob import generate_container_sas

        self.server: Any = request.getfixturevalue("azurite_server")
        self.container: str = request.getfixturevalue("azure_container")
        self.client = self.server.service_client().get_container_client(self.container)
        self.relay: CountingRelay | None = None
        self._grant()
        sas = generate_container_sas(self.server.account_name, self.container,
                                     account_key=self.server.account_key,
                                     policy_id=self.POLICY)
        self.sas = sas
        self.sas_file = request.getfixturevalue("tmp_path") / "azure-sas"
        self.sas_file.write_text(sas + "\n")

    def _grant(self) -> None:
        from azure.storage.blob import AccessPolicy, ContainerSasPermissions

        now = datetime.now(UTC)
        policy = AccessPolicy(permission=ContainerSasPermissions(
            read=True, write=True, create=True, add=True), start=now - timedelta(minutes=5),
            expiry=now + timedelta(hours=1))
        self.client.set_container_access_policy(signed_identifiers={self.POLICY: policy})

    @property
    def port(self) -> int:
        return int(self.server.port)

    def _account(self, endpoint: str) -> str:
        return f"{endpoint}/{self.server.account_name}"

    def args(self, endpoint: str) -> list[str]:
        return ["--azure-account-url", self._account(endpoint), "--azure-sas-token-file",
                str(self.sas_file)]

    def options(self, endpoint: str) -> dict[str, Any]:
        return {"source_settings": {"azure_account_url": self._account(endpoint)},
                "secrets": {"azure_sas_token": self.sas}}

    def url(self, key: str) -> str:
        return f"az://{self.container}/{key}"

    def stored(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self.client.get_blob_client(key).download_blob().readall())
        except ResourceNotFoundError:
            return None

    def _uncommitted(self, key: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self.client.get_blob_client(key).get_block_list("uncommitted")[1])
        except ResourceNotFoundError:
            return []  # no block staged: no blob at all

    def unfinished(self, key: str) -> list[str]:
        """The upload ids (block id prefixes) of the uncommitted blocks of `key`."""
        return sorted({str(b.id).rsplit("-", 1)[0] for b in self._uncommitted(key)})

    def held(self, key: str, upload_id: str) -> dict[int, str]:
        """The upload's uncommitted blocks: number -> the tag laden journals (id:size)."""
        return {int(str(b.id).rsplit("-", 1)[1]): f"{b.id}:{b.size}"
                for b in self._uncommitted(key) if str(b.id).startswith(f"{upload_id}-")}

    def unheld(self, key: str, record: dict[str, Any]) -> list[str]:
        return _unheld_parts(self, key, record)

    def lose(self, key: str) -> int:
        """Drop the uncommitted blocks of `key` as Azure does at another writer's commit (an
        empty block list, then the blob deleted: as after a week, no blob is left)."""
        found = self.unfinished(key)
        if found:
            blob = self.client.get_blob_client(key)
            blob.commit_block_list([])
            blob.delete_blob()
        return len(found)

    @contextmanager
    def slow_commit(self, seconds: float) -> Iterator[threading.Event]:
        """While inside, a Put Block List reaches Azure `seconds` after laden sent it whole."""
        assert self.relay is not None
        with self.relay.holding(self.COMMIT, seconds) as arrived:
            yield arrived

    @contextmanager
    def commit_answer_lost(self) -> Iterator[None]:
        """While inside, the first Put Block List takes effect and its answer is lost (the
        connection cut): laden asks again, or looks."""
        assert self.relay is not None
        with self.relay.losing_answer(self.COMMIT):
            yield

    @contextmanager
    def forbidden(self) -> Iterator[None]:
        """The SAS revoked while inside: its stored access policy removed (Azure answers 403
        AuthorizationFailure to every request signed with it), then granted again."""
        self.client.set_container_access_policy(signed_identifiers={})
        try:
            yield
        finally:
            self._grant()


class GcsService:
    """GCS on the resumable-session test server (tests/servers/gcs_resumable.py), one per
    test: fake-gcs-server finalises an object when asked for a session's offset, so it cannot
    show a resume. Sessions take the file in order: at most one chunk is in flight."""

    name = "gcs"
    part: ClassVar[int] = part_size(0, 16 * MiB, 100_000)
    """laden's chunk size for a test file: 16 MiB."""
    in_flight: ClassVar[int] = 1
    forbidden_words = ("access denied",)
    lost_words = ("no longer knows the upload session", "starting again from the first byte")
    BUCKET = "trust"
    COMMIT = rb"(?s)\APUT \S*[?&]upload_id=.*^Content-Range: bytes \d+-\d+/\d+\r$"
    """The chunk that finalises a session: its Content-Range gives the total size."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.server = GcsResumableServer().start()
        request.addfinalizer(self.server.stop)
        self.relay: CountingRelay | None = None

    @property
    def port(self) -> int:
        return urlsplit(self.server.endpoint).port or 80

    def args(self, endpoint: str) -> list[str]:
        return ["--gcs-endpoint-url", endpoint]

    def options(self, endpoint: str) -> dict[str, Any]:
        return {"source_settings": {"gcs_endpoint_url": endpoint}}

    def url(self, key: str) -> str:
        return f"gs://{self.BUCKET}/{key}"

    def stored(self, key: str) -> bytes | None:
        return self.server.object(self.BUCKET, key)

    def unfinished(self, key: str) -> list[str]:
        return [token for token, s in list(self.server.sessions.items())
                if s.name == key and not s.finished]

    def unheld(self, key: str, record: dict[str, Any]) -> list[str]:
        """The journal's bytes beyond what its session holds."""
        upload_id = (record.get("upload") or {}).get("upload_id")
        journalled = sum(end - start for start, end in record.get("done_ranges", ()))
        if not upload_id or not journalled:
            return []
        token = parse_qs(urlsplit(upload_id).query).get("upload_id", [""])[0]
        session = self.server.sessions.get(token)
        held = len(session.data) if session is not None else 0
        return [f"{journalled} bytes journalled, the session holds {held}"] \
            if journalled > held else []

    def lose(self, key: str) -> int:
        """Every session expires, as after a week."""
        found = len(self.unfinished(key))
        self.server.forget_sessions()
        return found

    @contextmanager
    def slow_commit(self, seconds: float) -> Iterator[threading.Event]:
        """While inside, the finalising chunk reaches the server `seconds` after laden sent
        it whole."""
        assert self.relay is not None
        with self.relay.holding(self.COMMIT, seconds) as arrived:
            yield arrived

    @contextmanager
    def commit_answer_lost(self) -> Iterator[None]:
        """While inside, the first finalising chunk takes effect and its answer is lost."""
        assert self.relay is not None
        with self.relay.losing_answer(self.COMMIT):
            yield

    @contextmanager
    def forbidden(self) -> Iterator[None]:
        """Every request answered 403 while inside (the server's `forbidden` switch)."""
        self.server.forbidden = True
        try:
            yield
        finally:
            self.server.forbidden = False


SERVICES: dict[str, Callable[[pytest.FixtureRequest], UploadService]] = {
    "s3": S3Service,
    "azure": AzureService,
    "gcs": GcsService,
}
"""Each service the upload section runs against."""
