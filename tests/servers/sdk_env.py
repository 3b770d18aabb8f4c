"""Keep every cloud SDK in the test process away from real clouds and real credentials.

``isolate_sdk_environment()`` must run before boto3/botocore, google-auth/google-cloud-storage,
azure-storage-blob or huggingface_hub are imported: several of them read their environment
once, at import time (``huggingface_hub.constants`` freezes ``HF_ENDPOINT`` and ``HF_HOME``).
The lead's ``tests/conftest.py`` calls it at import time.

Nothing here starts an emulator; the emulators in this package are always addressed with an
explicit endpoint. The settings below only make sure that a test which forgets to pass one
fails against a dead loopback port instead of reaching a real service or a real credential.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# A loopback port nothing listens on: a default endpoint that was not overridden fails fast
# with "connection refused" instead of leaving the machine.
DEAD_LOOPBACK = "127.0.0.1:9"

# Credentials and endpoint overrides a developer's shell might carry into the test run.
_UNSET = (
    # AWS: real keys, profiles, SSO and container/web-identity credential sources.
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    # Google: service-account files and an emulator some other tool left set.
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "STORAGE_EMULATOR_HOST",
    # Azure: connection strings and identity settings picked up by azure-identity.
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "DEFAULT_IDENTITY_CLIENT_ID",
    # Azure ML: the workspace a job runs in, the az CLI's defaults, and laden's own endpoints.
    "AZUREML_ARM_SUBSCRIPTION",
    "AZUREML_ARM_RESOURCEGROUP",
    "AZUREML_ARM_WORKSPACE_NAME",
    "AZUREML_CURRENT_CLOUD",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_DEFAULTS_GROUP",
    "AZURE_DEFAULTS_WORKSPACE",
    "LADEN_AZUREML_ARM_ENDPOINT",
    "LADEN_AZUREML_STORAGE_ENDPOINT",
    # Hugging Face: tokens and offline switches that would change what the client sends.
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_XET_CACHE",
)

_state: dict[str, Path] = {}


def isolate_sdk_environment() -> Path:
    """Point every SDK at empty, temporary configuration; return the temporary directory.

    Idempotent: a second call returns the same directory.
    """
    if "root" in _state:
        return _state["root"]
    root = Path(tempfile.mkdtemp(prefix="laden-sdk-env-"))
    # Removed at interpreter exit; ignore_errors because a test may still hold a file open.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    _state["root"] = root

    for name in _UNSET:
        os.environ.pop(name, None)

    # AWS: no instance-metadata probing (it would try 169.254.169.254), empty shared files so a
    # developer's ~/.aws is never read, fake static keys for clients created without any.
    aws_credentials = root / "aws-credentials"
    aws_config = root / "aws-config"
    aws_credentials.touch()
    aws_config.touch()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(aws_credentials)
    os.environ["AWS_CONFIG_FILE"] = str(aws_config)
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

    # Google: NO_GCE_CHECK stops google-auth from probing the metadata server; the metadata
    # host is also pointed at a dead loopback port, and CLOUDSDK_CONFIG at an empty directory
    # so ~/.config/gcloud application-default credentials are never found.
    gcloud = root / "gcloud"
    gcloud.mkdir()
    os.environ["NO_GCE_CHECK"] = "true"
    os.environ["GCE_METADATA_HOST"] = DEAD_LOOPBACK
    os.environ["GCE_METADATA_IP"] = DEAD_LOOPBACK
    os.environ["CLOUDSDK_CONFIG"] = str(gcloud)

    # Hugging Face: a private HF_HOME (no stored token, a private cache), no telemetry, no
    # implicit token, no Xet (it would call a real CAS service), and a default endpoint that
    # goes nowhere: tests pass the emulator's endpoint explicitly.
    hf_home = root / "hf-home"
    hf_home.mkdir()
    os.environ["HF_HOME"] = str(hf_home)
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_ENDPOINT"] = f"http://{DEAD_LOOPBACK}"
    os.environ["DO_NOT_TRACK"] = "1"

    # Azure: DefaultAzureCredential tries only the environment's client secret (no managed
    # identity probe of 169.254.169.254, no az CLI, no VS Code or shared token cache), and the
    # az CLI finds no login; Resource Manager and the datastores' accounts default to a dead
    # port (tests pass the fakes' explicitly, see servers.azureml).
    azure_config = root / "azure"
    azure_config.mkdir()
    os.environ["AZURE_TOKEN_CREDENTIALS"] = "EnvironmentCredential"
    os.environ["AZURE_CONFIG_DIR"] = str(azure_config)
    os.environ["LADEN_AZUREML_ARM_ENDPOINT"] = f"https://{DEAD_LOOPBACK}"
    os.environ["LADEN_AZUREML_STORAGE_ENDPOINT"] = f"https://{DEAD_LOOPBACK}/{{account}}"

    # Loopback traffic must never go through a proxy a developer configured.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    return root
