"""One face for the four object-store emulators, so the same download tests run on each.

A `Store` is one fresh bucket, container or Hugging Face repository on the session's emulator,
with what a test needs to use it: addresses, the options that reach it (in-process and on the
command line), and addresses or options that must fail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from servers.cloud_fixtures import unique_name


class Store:
    name: str
    source_class: type
    changes_in_place = True
    """False when an old version stays readable after a change (a Hugging Face commit)."""

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def url(self, key: str) -> str:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {}

    def secrets(self) -> dict[str, str]:
        return {}

    def options(self, **settings: Any) -> dict[str, Any]:
        """Keyword arguments for `DownloadManager.add`/`add_all` that reach this store."""
        return {"source_settings": {**self.settings(), **settings}, "secrets": self.secrets()}

    def cli_args(self) -> list[str]:
        """`laden get` options that reach this store."""
        raise NotImplementedError

    def missing_container_url(self) -> str:
        raise NotImplementedError

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        """`laden get` options with credentials the store refuses (for a `url` of it)."""
        raise NotImplementedError
        yield []


class S3Store(Store):
    name = "s3"

    def __init__(self, server: Any, bucket: str, folder: Path) -> None:
        from laden.sources.s3 import S3Source

        self.source_class = S3Source
        self.server, self.bucket, self.folder = server, bucket, folder
        self.client = server.client()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{quote(key)}"

    def settings(self) -> dict[str, Any]:
        return {"s3_endpoint_url": self.server.endpoint_url}

    def cli_args(self) -> list[str]:
        # The keys come from the environment (AWS_ACCESS_KEY_ID=testing, see sdk_env.py).
        return ["--s3-endpoint-url", self.server.endpoint_url]

    def missing_container_url(self) -> str:
        return f"s3://{unique_name('missing')}/x.bin"

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        # moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT requests; it runs in
        # this process, so the switch is flipped here for the length of the test.
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        key_file = self.folder / "s3-secret"
        key_file.write_text("not-the-secret\n")
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield [*self.cli_args(), "--s3-access-key-id", "AKIAUNKNOWN0000000000",
                   "--s3-secret-key-file", str(key_file)]
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before


class GcsStore(Store):
    name = "gs"

    def __init__(self, server: Any, bucket: str, folder: Path) -> None:
        from laden.sources.gcs import GcsSource

        self.source_class = GcsSource
        self.server, self.bucket, self.folder = server, bucket, folder

    def put(self, key: str, data: bytes) -> None:
        self.server.upload(self.bucket, key, data)

    def url(self, key: str) -> str:
        return f"gs://{self.bucket}/{quote(key)}"

    def settings(self) -> dict[str, Any]:
        return {"gcs_endpoint_url": self.server.endpoint}

    def cli_args(self) -> list[str]:
        return ["--gcs-endpoint-url", self.server.endpoint]

    def missing_container_url(self) -> str:
        return f"gs://{unique_name('missing')}/x.bin"

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        broken = self.folder / "gcs-key.json"
        broken.write_text(json.dumps({"type": "service_account", "client_email": "x@y"}))
        yield [*self.cli_args(), "--gcs-credentials-file", str(broken)]


class AzureStore(Store):
    name = "az"

    def __init__(self, server: Any, container: str, folder: Path) -> None:
        from laden.sources.azure import AzureBlobSource

        self.source_class = AzureBlobSource
        self.server, self.container, self.folder = server, container, folder
        self.connection_file = folder / "azure-connection"
        self.connection_file.write_text(server.connection_string + "\n")

    def put(self, key: str, data: bytes) -> None:
        self.server.upload(self.container, key, data)

    def url(self, key: str) -> str:
        return f"az://{self.container}/{quote(key)}"

    def secrets(self) -> dict[str, str]:
        return {"azure_connection_string": self.server.connection_string}

    def cli_args(self) -> list[str]:
        return ["--azure-connection-string-file", str(self.connection_file)]

    def missing_container_url(self) -> str:
        return f"az://{unique_name('missing')}/x.bin"

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        wrong_key = "A" * 86 + "=="
        broken = self.folder / "azure-bad-connection"
        broken.write_text(self.server.connection_string.replace(self.server.account_key,
                                                                wrong_key))
        yield ["--azure-connection-string-file", str(broken)]


class AzureMLStore(Store):
    """The datastore `blobs` (account key) of a workspace of the fake Resource Manager, in
    Azurite over HTTPS; the `azureml` fixture sets the environment that reaches them."""

    name = "azureml"

    def __init__(self, setup: Any, folder: Path) -> None:
        from laden.sources.azureml import AzureMLSource

        self.source_class = AzureMLSource
        self.setup, self.folder = setup, folder

    def put(self, key: str, data: bytes) -> None:
        self.setup.put(key, data)

    def url(self, key: str) -> str:
        return f"azureml://datastores/blobs/paths/{quote(key)}"

    def settings(self) -> dict[str, Any]:
        return dict(self.setup.workspace_settings())

    def cli_args(self) -> list[str]:
        return list(self.setup.workspace_args())

    def missing_container_url(self) -> str:
        return f"azureml://datastores/{unique_name('missing')}/paths/x.bin"

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        datastore = self.setup.workspace.datastores["blobs"]
        datastore.key = "A" * 86 + "=="  # what listSecrets hands out is refused by storage
        try:
            yield self.cli_args()
        finally:
            datastore.key = None


class HubStore(Store):
    """A private model repository: every request needs the token."""

    name = "hf"
    changes_in_place = False

    def __init__(self, hub: Any, folder: Path) -> None:
        from laden.sources.hf import HfSource

        self.source_class = HfSource
        self.hub, self.folder = hub, folder
        self.repo = f"org/{unique_name('repo')}"
        self.token_file = folder / "hf-token"
        self.token_file.write_text(hub.token + "\n")
        hub.add_repo(self.repo, {"README.md": b"# test\n"}, private=True)

    def put(self, key: str, data: bytes) -> None:
        self.hub.set_file(self.repo, key, data)

    def url(self, key: str) -> str:
        return f"hf://{self.repo}/{quote(key)}"

    def settings(self) -> dict[str, Any]:
        return {"hf_endpoint": self.hub.endpoint}

    def secrets(self) -> dict[str, str]:
        return {"hf_token": self.hub.token}

    def cli_args(self) -> list[str]:
        return ["--hf-endpoint", self.hub.endpoint, "--hf-token-file", str(self.token_file)]

    def missing_container_url(self) -> str:
        return f"hf://org/{unique_name('missing')}/x.bin"

    @contextmanager
    def bad_credentials(self) -> Iterator[list[str]]:
        wrong = self.folder / "hf-bad-token"
        wrong.write_text("hf_" + hashlib.sha1(b"wrong").hexdigest())
        yield ["--hf-endpoint", self.hub.endpoint, "--hf-token-file", str(wrong)]
