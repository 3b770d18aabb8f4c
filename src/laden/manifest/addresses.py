"""How a manifest's item types map onto laden's sources: addresses and option names.

This is the one table to keep in step with the cloud sources (`laden.sources.s3`, `gcs`, `azure`,
`hf`, `azureml`): each connection field of a manifest item goes either into
`DownloadOptions.source_settings` (not secret, journalled) or into `DownloadOptions.secrets`
(never journalled), under the name the source reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

SETTING = "source_settings"
SECRET = "secrets"


@dataclass(frozen=True)
class Field:
    option: str
    """SETTING or SECRET: which DownloadOptions mapping the value goes into."""
    key: str
    """The key the source reads in that mapping."""


@dataclass(frozen=True)
class ObjectStore:
    scheme: str
    """Address scheme: {scheme}://{bucket or container}/{key}."""
    containers: str
    """The manifest field listing the buckets or containers."""


OBJECT_STORES: dict[str, ObjectStore] = {
    "s3": ObjectStore("s3", "buckets"),
    "gcs": ObjectStore("gs", "buckets"),
    "azure-blob": ObjectStore("az", "containers"),
}

# Manifest field -> where its value goes. A field whose name ends in `_file` is a path passed
# on as it is (it must exist); any other field may instead be given as `{field}_file`, a file
# holding the value (Kubernetes secrets mounted as files), or as Kaiwo's {value: ..} / {file: ..}.
# A secret read from a file is passed as its value in `secrets` and as its path in the
# `{key}_file` setting, which the cloud sources read again when a download is resumed later
# by `laden resume` (secrets are never journalled; the path of the file holding one is).
CONNECTION_FIELDS: dict[str, dict[str, Field]] = {
    "s3": {
        "endpoint_url": Field(SETTING, "s3_endpoint_url"),
        "region": Field(SETTING, "s3_region"),
        "access_key_id": Field(SECRET, "s3_access_key_id"),
        "secret_key": Field(SECRET, "s3_secret_key"),
    },
    "gcs": {
        "application_credentials_file": Field(SETTING, "gcs_credentials_file"),
        "project": Field(SETTING, "gcs_project"),  # Kaiwo's; object reads need no project
        "endpoint_url": Field(SETTING, "gcs_endpoint_url"),
    },
    "azure-blob": {
        "connection_string": Field(SECRET, "azure_connection_string"),
        "account_url": Field(SETTING, "azure_account_url"),
        "account_key": Field(SECRET, "azure_account_key"),
        "sas_token": Field(SECRET, "azure_sas_token"),
    },
    "hf": {
        "endpoint_url": Field(SETTING, "hf_endpoint"),
        "token": Field(SECRET, "hf_token"),
    },
    "http": {},
    "ftp": {},
    "azureml": {
        "workspace": Field(SETTING, "azureml_workspace"),
        "resource_group": Field(SETTING, "azureml_resource_group"),
        "subscription": Field(SETTING, "azureml_subscription"),
        "arm_endpoint": Field(SETTING, "azureml_arm_endpoint"),
        "storage_endpoint": Field(SETTING, "azureml_storage_endpoint"),
    },
}

# Fields that are secret whatever the type (they are DownloadOptions fields of their own).
CREDENTIAL_FIELDS = ("username", "password", "bearer_token")


def object_address(store: ObjectStore, container: str, key: str, *, folder: bool) -> str:
    """s3://bucket/key, or s3://bucket/prefix/ for a folder ("" or "." is the whole bucket)."""
    key = key.strip("/")
    if key == ".":
        key = ""
    path = quote(key, safe="/")
    if folder and path:
        path += "/"
    return f"{store.scheme}://{container}/{path}"


HF_REPO_TYPES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def hf_address(repo_id: str, revision: str, path: str = "", repo_type: str = "model") -> str:
    """hf://[datasets/]owner/repo@revision/path; an empty path names the whole repository."""
    kind = HF_REPO_TYPES[repo_type]
    revision = quote(revision, safe="")  # refs/pr/1 is one revision, not a path
    return f"hf://{kind}{repo_id}@{revision}/{quote(path.strip('/'), safe='/')}"
