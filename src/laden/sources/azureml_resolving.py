"""What an `azureml://` address resolves to: a blob container, a folder in it, and a secret.

A datastore is read where Resource Manager says it is: `{protocol}://{account}.blob.{endpoint}`
(a Data Lake Gen2 datastore through its blob endpoint, its filesystem being the container), or
at `azureml_storage_endpoint` (`LADEN_AZUREML_STORAGE_ENDPOINT`), a URL in which `{account}`
stands for the account's name (an emulator, a private endpoint). With its account key or SAS
from `listSecrets` for a key or SAS datastore, else (an identity-based datastore, or one whose
secrets Resource Manager will not list to you, as azure-ai-ml does) with no secret: then your
own Azure credential signs in.

A job output is where the job's `uri` for it says. The output `default` (also `artifacts`, the
name Azure ML's docs give it) is the run's artifact folder, `ExperimentRun/dcid.JOB/` in
`workspaceartifactstore` when the job does not say; any other output the job does not report
is where Azure ML puts outputs by default, `azureml/JOB/NAME/` in the default datastore.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.config import Config
from ..core.errors import Permanent
from ..core.options import DownloadOptions
from . import cloud, listing
from .azureml_addresses import AzureMLAddress, WorkspaceName, output_location
from .azureml_arm import Datastore, ResourceManager, described

log = logging.getLogger("laden.sources")

READABLE = ("AzureBlob", "AzureDataLakeGen2")
ARTIFACTS = ("default", "artifacts")
ARTIFACT_STORE = "workspaceartifactstore"


@dataclass(frozen=True)
class Resolved:
    """Where a datastore or a job output is in storage, and how to sign in to it."""

    workspace: WorkspaceName
    datastore: Datastore
    root: str
    """The blob path the address's paths are under: "" for a datastore, the output's folder."""
    account_url: str
    secrets: dict[str, str] = field(repr=False)
    """`azure_account_key` or `azure_sas_token`, or nothing (your own credential)."""
    made: float = field(default_factory=time.monotonic)

    def key(self, path: str) -> str:
        return f"{self.root.rstrip('/')}/{path}" if self.root else path

    def blob_url(self, path: str) -> str:
        return cloud.object_url("az", self.datastore.container, self.key(path))

    def relative(self, key: str) -> str:
        return key[len(self.root.rstrip("/")) + 1:] if self.root else key

    def options(self, options: DownloadOptions) -> DownloadOptions:
        """The Azure Blob source's options: the account and secret, and the folder filters."""
        settings = {k: v for k, v in options.source_settings.items()
                    if k in listing.FILTER_SETTINGS}
        settings["azure_account_url"] = self.account_url
        return dataclasses.replace(options, source_settings=settings, secrets=dict(self.secrets))

    def age(self) -> float:
        return time.monotonic() - self.made


def resolve(arm: ResourceManager, workspace: WorkspaceName, address: AzureMLAddress,
            storage_endpoint: str | None) -> Resolved:
    """Ask Resource Manager where `address` is and for the secret to read it with.

    Raises:
        Permanent: Resource Manager refuses or has no such datastore or job, or the datastore
            is of a kind laden does not read (an Azure Files share, service principal
            credentials).
    """
    root = ""
    if address.job is not None:
        workspace, name, root = _job_output(arm, workspace, str(address.job),
                                            str(address.output))
    else:
        name = str(address.datastore)
    datastore = arm.datastore(workspace, name)
    if datastore.kind not in READABLE or not datastore.account or not datastore.container:
        raise Permanent(f"datastore {name} of {described(workspace)} is "
                        f"{datastore.kind or 'of no known type'}: laden reads Azure Blob and "
                        "Azure Data Lake Gen2 datastores")
    secrets: dict[str, str] = {}
    if datastore.credentials in ("AccountKey", "Sas"):
        try:
            secret = arm.secret(workspace, name)
        except Permanent as exc:
            if exc.status != 403:
                raise
            log.debug("%s; reading datastore %s with your own Azure credential", exc, name)
        else:
            secrets = {("azure_account_key" if secret.kind == "AccountKey"
                        else "azure_sas_token"): secret.value}
    elif datastore.credentials != "None":
        raise Permanent(f"datastore {name} of {described(workspace)} uses "
                        f"{datastore.credentials} credentials: laden reads datastores with an "
                        "account key, a SAS, or none (identity-based)")
    if storage_endpoint:
        account_url = storage_endpoint.replace("{account}", datastore.account).rstrip("/")
    else:
        account_url = f"{datastore.protocol}://{datastore.account}.blob.{datastore.endpoint}"
    return Resolved(workspace, datastore, root, account_url, secrets)


def storage_endpoint(options: DownloadOptions, config: Config | None,
                     environ: Mapping[str, str]) -> str | None:
    """The `azureml_storage_endpoint` in force, if any."""
    value = cloud.setting(options, config, "azureml_storage_endpoint") or environ.get(
        "LADEN_AZUREML_STORAGE_ENDPOINT")
    return str(value) if value else None


def _job_output(arm: ResourceManager, workspace: WorkspaceName, job: str,
                name: str) -> tuple[WorkspaceName, str, str]:
    """(workspace, datastore, folder) of a job's output (see the module docstring)."""
    outputs = arm.job_outputs(workspace, job)
    if name == "artifacts" and name not in outputs:
        name = "default"
    uri: Any = outputs.get(name)
    if uri:
        if "${{default_datastore}}" in uri:
            uri = uri.replace("${{default_datastore}}", arm.default_datastore(workspace).name)
        uri = uri.replace("${{name}}", job).replace("${{output_name}}", name)
        named, store, folder = output_location(uri)
        return named or workspace, store, folder
    if name in ARTIFACTS:
        return workspace, ARTIFACT_STORE, f"ExperimentRun/dcid.{job}/"
    return workspace, arm.default_datastore(workspace).name, f"azureml/{job}/{name}/"
