"""Session-scoped pytest fixtures for the cloud and FTP emulators (imported by tests/conftest.py).

Each emulator starts the first time a test asks for it and stops at the end of the session;
a session that asks for none starts none. An emulator that cannot start fails the test with
the reason (``pytest.fail``): nothing is skipped silently.

The function-scoped fixtures (``s3_bucket``, ``gcs_bucket``, ``azure_container``,
``hf_hub``) give each test its own bucket/container or clean request logs on the shared
server, so tests stay independent without paying for a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .azure_blob import AzuriteServer
from .azureml import LOGIN_HOST, AzureMLServer, AzureMLSetup
from .ftp import FTPTestServer
from .gcs import GCSServer
from .hf_hub import HubServer
from .s3 import S3Server
from .sdk_env import isolate_sdk_environment

# Idempotent; the conftest calls it first, this only guards against a different import order.
isolate_sdk_environment()

# What `from servers.cloud_fixtures import *` (tests/conftest.py) brings in: fixtures only.
__all__ = [
    "azure_container",
    "azureml",
    "azureml_server",
    "azureml_tls",
    "azurite_tls_server",
    "entra_proxy",
    "azurite_server",
    "ftp_server",
    "ftps_server",
    "gcs_bucket",
    "gcs_server",
    "hf_hub",
    "hf_hub_server",
    "s3_bucket",
    "s3_server",
    "unique_name",
]

T = TypeVar("T")


def _started(name: str, factory: Callable[[], T], start: Callable[[T], object]) -> T:
    server = factory()
    try:
        start(server)
    except Exception as error:  # any reason at all: report it, never skip
        pytest.fail(f"the {name} emulator could not start: {type(error).__name__}: {error}")
    return server


def unique_name(prefix: str) -> str:
    """A bucket/container-safe name (lower case, digits, dashes; 3-63 chars)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto S3 on 127.0.0.1: ``endpoint_url``, ``access_key``/``secret_key``, ``region``."""
    server = _started("S3 (moto)", S3Server, S3Server.start)
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's S3 emulator."""
    name = unique_name("laden")
    s3_server.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on 127.0.0.1: ``endpoint``, ``client()``."""
    server = _started("GCS (fake-gcs-server)", GCSServer, GCSServer.start)
    yield server
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    name = unique_name("laden")
    gcs_server.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    """Azurite blob on 127.0.0.1: ``connection_string``, ``account_url``, ``account_key``."""
    server = _started("Azure Blob (Azurite)", AzuriteServer, AzuriteServer.start)
    yield server
    server.stop()


@pytest.fixture
def azure_container(azurite_server: AzuriteServer) -> str:
    name = unique_name("laden")
    azurite_server.create_container(name)
    return name


@pytest.fixture(scope="session")
def azureml_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A trustme CA for the Azure ML fakes, and the PEM file clients trust it with."""
    import trustme

    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("azureml-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return ca, pem


@pytest.fixture(scope="session")
def azurite_tls_server(azureml_tls: tuple[Any, Path],
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    """Azurite over HTTPS, checking bearer tokens as Azure Storage does (`--oauth basic`)."""
    ca, pem = azureml_tls
    folder = tmp_path_factory.mktemp("azurite-tls")
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    server = _started("Azure Blob over HTTPS (Azurite)", lambda: AzuriteServer(
        cert_file=str(folder / "cert.pem"), key_file=str(folder / "key.pem"), ca_file=str(pem),
        oauth=True), AzuriteServer.start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azureml_server(azureml_tls: tuple[Any, Path],
                   azurite_tls_server: AzuriteServer) -> Iterator[AzureMLServer]:
    """The fake Resource Manager and Entra ID (see servers.azureml)."""
    server = _started("Azure ML (Resource Manager and Entra ID)",
                      lambda: AzureMLServer(azureml_tls[0], azurite_tls_server),
                      AzureMLServer.start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def entra_proxy(azureml_server: AzureMLServer) -> Iterator[Any]:
    """An HTTP proxy whose only destination is login.microsoftonline.com, which it maps to the
    fake: azure-identity asks Entra ID there, and nothing else may leave 127.0.0.1."""
    from faults.relays import ForwardProxy

    proxy = ForwardProxy({LOGIN_HOST: azureml_server.port})
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def azureml(azureml_server: AzureMLServer, entra_proxy: Any, azureml_tls: tuple[Any, Path],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureMLSetup]:
    """A workspace of this test's own, and the environment that makes laden reach the fakes:
    a client secret for EnvironmentCredential, the proxy to Entra ID, the test CA, and the
    Resource Manager and storage endpoints. Afterwards, no request went anywhere else."""
    container = unique_name("aml")
    azureml_server.storage.create_container(container)
    workspace = azureml_server.add_workspace()
    workspace.add_datastore("blobs", container, default=True)
    bed = AzureMLSetup(azureml_server, workspace, container)
    proxy = f"http://127.0.0.1:{entra_proxy.port}"
    for name, value in {
        "AZURE_CLIENT_ID": azureml_server.client_id,
        "AZURE_CLIENT_SECRET": azureml_server.client_secret,
        "AZURE_TENANT_ID": azureml_server.tenant,
        "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy,
        "REQUESTS_CA_BUNDLE": str(azureml_tls[1]),
        "LADEN_AZUREML_ARM_ENDPOINT": azureml_server.arm_endpoint,
        "LADEN_AZUREML_STORAGE_ENDPOINT": bed.storage_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    yield bed
    strays = [r for r in entra_proxy.requests if not r.startswith(f"CONNECT {LOGIN_HOST}:443 ")]
    assert not strays, f"requests that would have left 127.0.0.1: {strays}"


@pytest.fixture(scope="session")
def hf_hub_server() -> Iterator[HubServer]:
    """The Hugging Face Hub emulator: ``endpoint``, ``cdn_endpoint``, ``token``, request logs."""
    server = _started("Hugging Face Hub", HubServer, HubServer.start)
    yield server
    server.stop()


@pytest.fixture
def hf_hub(hf_hub_server: HubServer) -> HubServer:
    """The session's hub with empty ``hub_requests``/``cdn_requests`` logs for this test.

    Repos persist across tests: use repo ids unique to the test (``unique_name``).
    """
    hf_hub_server.hub_requests.clear()
    hf_hub_server.cdn_requests.clear()
    return hf_hub_server


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FTPTestServer]:
    """Plain FTP: ``host``, ``port``, ``user``/``password``, ``anonymous``, ``write_file``."""
    server = _started("FTP", FTPTestServer, FTPTestServer.start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftps_server() -> Iterator[FTPTestServer]:
    """Explicit FTPS (AUTH TLS, TLS required on control and data): also ``ca_cert_path``."""
    server = _started("FTPS", lambda: FTPTestServer(tls=True), FTPTestServer.start)
    yield server
    server.stop()
