"""The four Azure Resource Manager calls an `azureml://` address needs, over httpx.

    GET  {workspace}/datastores/NAME                a datastore: its account, container and
                                                    kind of credential
    POST {workspace}/datastores/NAME/listSecrets    its key or SAS, asked to expire in an hour
    GET  {workspace}/datastores?isDefault=true      the workspace's default datastore
    GET  {workspace}/jobs/JOB                       a job's outputs and where each one is

`{workspace}` is `/subscriptions/SUB/resourceGroups/RG/providers/
Microsoft.MachineLearningServices/workspaces/WS`. These are what azure-ai-ml's
`DatastoreOperations` and `JobOperations` call; asking them directly spares the 110 MiB and the
second of import time of azure-ai-ml. The bearer token comes from an azure-identity credential
and only ever goes to an https:// endpoint.

Every failure is one line naming the workspace and what was asked for: 404 and 403 are
`Permanent`, 429 `SlowDown`, 5xx and connection failures `Retryable`. Secrets are returned to
the caller and never logged or kept here.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..core.errors import InputError, LadenError, Permanent, Retryable, SlowDown
from ..core.version import __version__
from .azureml_addresses import WorkspaceName
from .requests_log import logged_request

API_VERSION = "2024-04-01"
SECRET_HOURS = 1
"""How long a key or SAS from listSecrets is asked to stay valid."""
_SHOWN = 300
"""Characters of a credential failure's text a message keeps."""


@dataclass(frozen=True)
class Datastore:
    name: str
    kind: str
    """`datastoreType`: AzureBlob, AzureDataLakeGen2, AzureFile, ..."""
    account: str
    container: str
    """The blob container, or a Data Lake Gen2 datastore's filesystem."""
    endpoint: str
    """The storage suffix: core.windows.net, or a sovereign cloud's."""
    protocol: str
    credentials: str
    """`credentialsType`: AccountKey, Sas, None (identity-based), ServicePrincipal, ..."""


@dataclass(frozen=True)
class Secret:
    kind: str
    """`secretsType`: AccountKey or Sas."""
    value: str = field(repr=False)


def workspace_path(workspace: WorkspaceName) -> str:
    return (f"/subscriptions/{quote(workspace.subscription, safe='')}/resourceGroups/"
            f"{quote(workspace.resource_group, safe='')}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{quote(workspace.name, safe='')}")


def described(workspace: WorkspaceName) -> str:
    return (f"Azure ML workspace {workspace.name} (resource group {workspace.resource_group}, "
            f"subscription {workspace.subscription})")


class ResourceManager:
    """One Resource Manager endpoint, asked with one credential; thread-safe."""

    def __init__(self, endpoint: str, scope: str, credential: Any, *, verify: ssl.SSLContext,
                 proxy: str | None, connect_timeout: float, read_timeout: float) -> None:
        import httpx

        if not endpoint.lower().startswith("https://"):
            raise InputError(f"the Azure Resource Manager endpoint {endpoint} is not https://: "
                             "laden never sends an Azure token in the clear")
        self.endpoint = endpoint.rstrip("/")
        self._scope = scope
        self._credential = credential
        self._client = httpx.Client(
            verify=verify, proxy=proxy, trust_env=False, follow_redirects=False,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"User-Agent": f"laden/{__version__}", "Accept": "application/json"})

    def datastore(self, workspace: WorkspaceName, name: str) -> Datastore:
        body = self._call("GET", workspace, f"/datastores/{quote(name, safe='')}",
                          f"datastore {name}")
        return _datastore(body, name)

    def default_datastore(self, workspace: WorkspaceName) -> Datastore:
        body = self._call("GET", workspace, "/datastores", "the default datastore",
                          params={"isDefault": "true"})
        found = body.get("value") if isinstance(body, dict) else None
        if not found or not isinstance(found[0], dict):
            raise Permanent(f"{described(workspace)} has no default datastore")
        return _datastore(found[0], str(found[0].get("name") or ""))

    def secret(self, workspace: WorkspaceName, name: str) -> Secret:
        body = self._call("POST", workspace, f"/datastores/{quote(name, safe='')}/listSecrets",
                          f"the secrets of datastore {name}",
                          json={"expirableSecret": True, "expireAfterHours": SECRET_HOURS})
        kind = str(body.get("secretsType") or "")
        value = body.get({"AccountKey": "key", "Sas": "sasToken"}.get(kind, "")) or ""
        if not isinstance(value, str) or not value:
            raise Permanent(f"datastore {name} of {described(workspace)} has secrets of a kind "
                            f"laden cannot use ({kind or 'none given'}): laden reads datastores "
                            "with an account key, a SAS, or none (identity-based)")
        return Secret(kind, value)

    def job_outputs(self, workspace: WorkspaceName, job: str) -> dict[str, str | None]:
        """Each output of `job`, by name, and its uri (None when it has none yet)."""
        body = self._call("GET", workspace, f"/jobs/{quote(job, safe='')}", f"job {job}")
        outputs = (body.get("properties") or {}).get("outputs") or {}
        return {str(name): (str(value["uri"]) if isinstance(value, dict) and value.get("uri")
                            else None) for name, value in outputs.items()}

    def close(self) -> None:
        self._client.close()

    # -- one call ----------------------------------------------------------------------------

    def _call(self, method: str, workspace: WorkspaceName, path: str, what: str, *,
              params: dict[str, str] | None = None, json: Any = None) -> Any:
        import httpx

        url = f"{self.endpoint}{workspace_path(workspace)}{path}"
        headers = {"Authorization": f"Bearer {self._token()}"}
        with logged_request(method, url) as answer:
            try:
                response = self._client.request(
                    method, url, params={"api-version": API_VERSION, **(params or {})},
                    json=json, headers=headers)
            except httpx.HTTPError as exc:
                raise Retryable(f"connection to Azure Resource Manager {self.endpoint} failed "
                                f"asking for {what}: {_first_line(exc)}") from None
            answer.status = response.status_code
        if response.status_code >= 400:
            raise _error(response, workspace, what)
        try:
            return response.json()
        except ValueError:
            raise Retryable(f"Azure Resource Manager answered {what} with something that is not "
                            "JSON") from None

    def _token(self) -> str:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

        try:
            return str(self._credential.get_token(self._scope).token)
        except ServiceRequestError as exc:
            raise Retryable(f"could not reach Azure to sign in: {_first_line(exc)}") from None
        except ClientAuthenticationError as exc:
            raise Permanent(
                "could not sign in to Azure for Azure ML: sign in with az login, set "
                "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or run where a "
                f"managed identity is ({_summary(exc)})") from None


def _datastore(body: Any, name: str) -> Datastore:
    properties = (body.get("properties") if isinstance(body, dict) else None) or {}
    credentials = properties.get("credentials") or {}
    return Datastore(
        name=str(body.get("name") or name),
        kind=str(properties.get("datastoreType") or ""),
        account=str(properties.get("accountName") or ""),
        container=str(properties.get("containerName") or properties.get("filesystem") or ""),
        endpoint=str(properties.get("endpoint") or "core.windows.net"),
        protocol=str(properties.get("protocol") or "https"),
        credentials=str(credentials.get("credentialsType") or "None"),
    )


def _error(response: Any, workspace: WorkspaceName, what: str) -> LadenError:
    status = response.status_code
    try:
        code = str((response.json().get("error") or {}).get("code") or "")
    except (ValueError, AttributeError):
        code = ""
    reason = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    where = described(workspace)
    if status == 404:
        return Permanent(f"{what} not found in {where}: {reason}", status=status)
    if status == 403:
        return Permanent(f"Azure Resource Manager refused access to {what} of {where}: {reason}; "
                         "your Azure identity needs a role on the workspace that allows it",
                         status=status)
    if status == 401:
        return Permanent(f"Azure Resource Manager did not accept your Azure sign-in for {what} "
                         f"of {where}: {reason}", status=status)
    if status == 429:
        after = response.headers.get("retry-after", "")
        return SlowDown(f"Azure Resource Manager asks for fewer requests: {reason}",
                        status=status, retry_after=float(after) if after.isdigit() else None)
    if status >= 500 or status == 408:
        return Retryable(f"Azure Resource Manager error asking for {what} of {where}: {reason}",
                         status=status)
    return Permanent(f"Azure Resource Manager refused to give {what} of {where}: {reason}",
                     status=status)


def _first_line(value: Any) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


_BOILERPLATE = ("DefaultAzureCredential failed", "Attempted credentials", "To mitigate")


def _summary(exc: Exception) -> str:
    """An azure-identity failure in one line: DefaultAzureCredential says why each of its
    credentials failed, one per line, between lines that say nothing more."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(_BOILERPLATE)] or lines
    text = "; ".join(said) or type(exc).__name__
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
