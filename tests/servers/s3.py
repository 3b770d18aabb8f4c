"""S3 emulator: moto in server mode, in a thread of the test process, on 127.0.0.1.

moto's server keeps its state in the process-wide moto backends, so a test that also uses
``moto.mock_aws`` in-process shares (and may reset) the same buckets: use one or the other.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from ._proc import Emulator

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def _give_moto_crc32c() -> None:
    """moto computes "CRC32C" with the `crc32c` package and, without it, silently with CRC32
    instead; google-crc32c (a laden dependency) serves as that package, so the checksums moto
    computes of objects are the real ones."""
    import sys
    import types

    try:
        import crc32c  # noqa: F401
    except ImportError:
        import google_crc32c

        shim = types.ModuleType("crc32c")
        shim.crc32c = lambda body: google_crc32c.value(bytes(body))  # type: ignore[attr-defined]
        sys.modules["crc32c"] = shim


class S3Server(Emulator):
    """A moto S3 endpoint. ``endpoint_url`` is valid between ``start()`` and ``stop()``."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    def __init__(self, *, min_part_size: int = 1) -> None:
        # Real S3 (and moto by default) reject a non-last part under 5 MiB; tests want
        # small parts, so the minimum is lowered unless a test asks for the real one.
        self.min_part_size = min_part_size
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> S3Server:
        # Imported here so that merely importing this module (e.g. for the fixtures) does not
        # pull in moto and Flask; only a test that asks for S3 pays for them.
        import moto.s3.models
        from moto.server import ThreadedMotoServer

        # moto reads S3_UPLOAD_PART_MIN_SIZE from the environment once, at import; the
        # module attribute is what the check uses, so set it directly.
        moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = self.min_part_size  # type: ignore[attr-defined]
        _give_moto_crc32c()
        # werkzeug logs every request at INFO; that would bury real test output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Port 0: the kernel picks a free port, so there is no race with other emulators.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


    def reset(self) -> None:
        """Drop every bucket and object (moto's reset endpoint)."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", **kwargs)`` aimed at this emulator."""
        from botocore.config import Config

        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            # Path style: a host name "bucket.127.0.0.1" would not resolve.
            "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        }

    def client(self) -> Any:
        import boto3

        # A private Session: boto3's default session is process-global and a test may have
        # configured it differently.
        return boto3.session.Session().client("s3", **self.client_kwargs())

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def put_object(
        self, bucket: str, key: str, data: bytes, *, checksum_sha256: bool = False
    ) -> dict[str, Any]:
        """Upload ``data`` in one PUT; return the PutObject response (ETag, checksums)."""
        extra: dict[str, Any] = {}
        if checksum_sha256:
            # botocore computes the SHA-256 and sends it; moto stores it and returns it from
            # HEAD/GET with ChecksumMode=ENABLED. Without this, botocore's default
            # (request_checksum_calculation=when_supported) stores a CRC32 instead.
            extra["ChecksumAlgorithm"] = "SHA256"
        return self.client().put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def put_multipart(self, bucket: str, key: str, data: bytes, part_size: int) -> str:
        """Upload ``data`` as a multipart upload; return the ``"<md5-of-md5s>-N"`` ETag.

        Real S3 rejects parts under 5 MiB except the last; this emulator accepts any size
        down to ``min_part_size`` (1 byte by default) so small parts keep the tests fast.
        """
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        client = self.client()
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = []
        for number, offset in enumerate(range(0, max(len(data), 1), part_size), start=1):
            chunk = data[offset : offset + part_size]
            response = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )
            parts.append({"ETag": response["ETag"], "PartNumber": number})
        response = client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return str(response["ETag"])


def sha256_b64(data: bytes) -> str:
    """The base64 SHA-256 that S3 uses in ``x-amz-checksum-sha256``."""
    import base64

    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def multipart_etag(data: bytes, part_size: int) -> str:
    """The ETag S3 gives a multipart upload: md5 of the parts' binary md5s, then ``-N``."""
    digests = [
        hashlib.md5(data[i : i + part_size]).digest()
        for i in range(0, max(len(data), 1), part_size)
    ]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'
