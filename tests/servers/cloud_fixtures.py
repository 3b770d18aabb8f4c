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
from typing import TypeVar

import pytest

from .azure_blob import AzuriteServer
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
