"""Azure Blob emulator: Azurite's blob service (from npm) run as a subprocess on 127.0.0.1.

Install once with ``npm ci`` at the repository root (package.json / package-lock.json there).
Azurite 3.36+ declares Node >= 21; this machine has Node 20, and npm resolves the ^3.35.0 range
to 3.35.0, which runs on it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._proc import Emulator, die_with_parent, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"

# The development-storage account every Azurite instance knows; public, documented by Microsoft.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteServer(Emulator):
    """An Azurite blob endpoint with in-memory storage.

    With ``cert_file`` and ``key_file`` (PEM) it speaks HTTPS, and ``ca_file`` is what clients
    here trust it with; with ``oauth`` as well it checks bearer tokens too (Azurite's
    ``--oauth basic``: a JWT whose issuer, audience and lifetime are Azure Storage's; the
    signature is not checked), as Azure Storage does for identity-based access.
    """

    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, *, binary: Path = AZURITE_BIN, start_timeout: float = 30.0,
                 cert_file: str | None = None, key_file: str | None = None,
                 ca_file: str | None = None, oauth: bool = False,
                 extent_memory_mib: int = 512) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self.cert_file, self.key_file, self.ca_file = cert_file, key_file, ca_file
        self.oauth = oauth
        # Azurite refuses a block once its in-memory blocks pass this limit (and frees deleted
        # ones only every 10 minutes): the tests' blobs are small, the benchmark's are 1 GiB.
        self.extent_memory_mib = extent_memory_mib
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    @property
    def scheme(self) -> str:
        return "https" if self.cert_file else "http"

    @property
    def account_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};"
            f"AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.account_url};"
        )

    def start(self) -> AzuriteServer:
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} is missing: run `npm ci` in {REPO_ROOT}")
        self.port = free_port()
        # --inMemoryPersistence refuses --location, but Azurite still treats its working
        # directory as the workspace: run it in a temporary one so nothing lands in the repo.
        self._workdir = tempfile.TemporaryDirectory(prefix="laden-azurite-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        tls = ["--cert", self.cert_file, "--key", str(self.key_file)] if self.cert_file else []
        oauth = ["--oauth", "basic"] if self.oauth else []
        self._process = subprocess.Popen(
            [
                str(self.binary),
                *tls,
                *oauth,
                "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port),
                # The SDK may speak a newer API version than this Azurite knows.
                "--skipApiVersionCheck",
                # Telemetry would contact Microsoft; never from a test.
                "--disableTelemetry",
                "--inMemoryPersistence",
                "--extentMemoryLimit", str(self.extent_memory_mib),
                # Account name from the path, never from the host name.
                "--disableProductStyleUrl",
                "--silent",
            ],
            cwd=self._workdir.name,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
            # Its own process group: node may spawn children, and stop() kills them all.
            start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_for_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"azurite-blob exited with code {self._process.returncode}: {self._output()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"azurite-blob did not listen on 127.0.0.1:{self.port} within {self.start_timeout}s;"
            f" output: {self._output()}"
        )

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read().decode("utf-8", "replace")[-4000:])

    def stop(self) -> None:
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


    def service_client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        extra = {"connection_verify": self.ca_file} if self.ca_file else {}
        return BlobServiceClient.from_connection_string(self.connection_string, **extra)

    def create_container(self, name: str) -> Any:
        return self.service_client().create_container(name)

    def upload(
        self, container: str, blob: str, data: bytes, *, content_md5: bool = True
    ) -> dict[str, Any]:
        """Upload ``data`` as a block blob; return its properties (etag, content_settings).

        A single-shot Put Blob always gets a Content-MD5 (Azure and Azurite compute it), so
        ``content_md5=False`` stages the data as blocks and commits the list without one,
        which is what a large blob uploaded in blocks looks like.
        """
        import base64
        import hashlib

        from azure.storage.blob import BlobBlock, ContentSettings

        client = self.service_client().get_blob_client(container, blob)
        if content_md5:
            settings = ContentSettings(
                content_type="application/octet-stream",
                content_md5=bytearray(hashlib.md5(data).digest()),
            )
            client.upload_blob(data, overwrite=True, content_settings=settings)
        else:
            block_id = base64.b64encode(b"block-000000").decode("ascii")
            client.stage_block(block_id, data)
            client.commit_block_list(
                [BlobBlock(block_id=block_id)],
                content_settings=ContentSettings(content_type="application/octet-stream"),
            )
        return dict(client.get_blob_properties())

    def container_sas(self, container: str, *, expires_in: timedelta = timedelta(hours=1)) -> str:
        """A read and list SAS for ``container``, signed with the account key.

        A SAS lives in the query, so a relay may change the request's headers without breaking
        it (a Shared Key signature covers If-Match and the other precondition headers).
        """
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            account_name=self.account_name,
            container_name=container,
            account_key=self.account_key,
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=datetime.now(UTC) + expires_in,
        )

    def sas_url(
        self,
        container: str,
        blob: str,
        *,
        expires_in: timedelta = timedelta(hours=1),
        permission: str = "r",
    ) -> str:
        """A blob URL carrying a read SAS signed with the account key."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        token = generate_blob_sas(
            account_name=self.account_name,
            container_name=container,
            blob_name=blob,
            account_key=self.account_key,
            permission=BlobSasPermissions.from_string(permission),
            expiry=datetime.now(UTC) + expires_in,
        )
        return f"{self.account_url}/{container}/{quote(blob)}?{token}"
