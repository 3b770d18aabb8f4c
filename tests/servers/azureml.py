"""A fake of what `azureml://` addresses need from Azure: Resource Manager's Azure ML datastore and
job calls, and Entra ID's token endpoint, over TLS with a trustme test CA.

No Azure ML emulator exists. This answers the calls azure-ai-ml's `DatastoreOperations` and
`JobOperations` make (checked against azure-ai-ml 1.35), with datastores in Azurite's account:

    GET  /subscriptions/S/resourceGroups/R/providers/Microsoft.MachineLearningServices/
         workspaces/W/datastores/NAME                    the datastore (accountName, ...)
    POST .../datastores/NAME/listSecrets                 {"secretsType": "AccountKey", "key"}
                                                         or {"secretsType": "Sas", "sasToken"}
    GET  .../datastores?isDefault=true                   {"value": [the default datastore]}
    GET  .../workspaces/W/jobs/JOB                       {"properties": {"outputs": ...}}

Each call must carry a bearer token this server issued for Resource Manager
(`https://management.azure.com`) and an `api-version` Azure ML has; it answers 401 or 400 as
Resource Manager does otherwise, and 404 for what it does not hold. `refuse(workspace, what,
status)` makes calls whose path holds `what` answer 403 (or any status). Calls are counted by
workspace and kind (`calls`), so tests running side by side each see their own.

Entra ID, as MSAL's client-credential flow asks it (azure-identity's EnvironmentCredential):

    GET  /TENANT/v2.0/.well-known/openid-configuration   the token endpoint
    POST /TENANT/oauth2/v2.0/token                       client_credentials -> a JWT
    GET  /common/discovery/instance                      the authority's aliases, which MSAL
                                                         asks for after a refused request

The token is a JWT with the claims Azurite's `--oauth basic` checks (an `sts.windows.net`
issuer, the scope's resource as audience, nbf/iat/exp); its signature is not real. The server
is meant to be reached as `login.microsoftonline.com` (the authority azure-identity uses by
default, so MSAL does no instance discovery) through a CONNECT proxy that maps that name to it,
and as `https://127.0.0.1:PORT` for Resource Manager: its certificate names both.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._httpd import QuietServer, RequestLog, serve_bytes
from ._proc import Emulator
from .azure_blob import AzuriteServer

LOGIN_HOST = "login.microsoftonline.com"
ARM_AUDIENCE = "https://management.azure.com"
STORAGE_AUDIENCE = "https://storage.azure.com"
API_VERSIONS = frozenset({"2023-04-01", "2023-10-01", "2024-04-01", "2024-10-01", "2025-01-01",
                          "2025-06-01", "2025-12-01"})
"""Azure ML's stable Resource Manager versions; the fake refuses others, as ARM would."""
_PROVIDER = "providers/microsoft.machinelearningservices/workspaces/"


@dataclass
class FakeDatastore:
    name: str
    container: str
    credentials: str = "AccountKey"
    """AccountKey, Sas or None (identity-based)."""
    kind: str = "AzureBlob"
    account: str = AzuriteServer.account_name
    key: str | None = None
    """The key listSecrets gives, when not the account's (a wrong one, for a test)."""


@dataclass
class FakeWorkspace:
    subscription: str
    resource_group: str
    name: str
    datastores: dict[str, FakeDatastore] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    default: str | None = None
    refusals: dict[str, int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def add_datastore(self, name: str, container: str, *, credentials: str = "AccountKey",
                      kind: str = "AzureBlob", default: bool = False) -> FakeDatastore:
        store = self.datastores[name.lower()] = FakeDatastore(name, container, credentials, kind)
        if default:
            self.default = name.lower()
        return store

    def add_job(self, name: str, outputs: dict[str, str | None]) -> None:
        """A job whose outputs are at these azureml:// uris (None: reported without one)."""
        self.jobs[name.lower()] = {
            output: {"jobOutputType": "uri_folder", "mode": "ReadWriteMount", "uri": uri}
            for output, uri in outputs.items()}

    def refuse(self, what: str, status: int = 403) -> None:
        """Calls whose path holds `what` (e.g. "datastores/blobs") answer `status`."""
        self.refusals[what.lower()] = status

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/"
                f"providers/Microsoft.MachineLearningServices/workspaces/{self.name}")


class AzureMLServer(Emulator):
    """The fake; `storage` is the (HTTPS) Azurite its datastores point into."""

    tenant = "00000000-0000-4000-8000-00000000a11e"
    client_id = "11111111-0000-4000-8000-00000000c11e"
    client_secret = "fake-client-secret-Zq9~not-for-anything"

    def __init__(self, ca: Any, storage: AzuriteServer) -> None:
        self._ca = ca
        self.storage = storage
        self.requests = RequestLog()
        self.workspaces: dict[tuple[str, str, str], FakeWorkspace] = {}
        self.sas_lifetime = timedelta(hours=1)
        self.issued_sas: list[str] = []
        self.token_requests: Counter[str] = Counter()
        self.storage_issuer: str | None = None
        """Set: storage tokens carry this issuer, which Azurite refuses unless it is Entra's."""
        self._tokens: dict[str, str] = {}  # token -> audience
        self._lock = threading.Lock()
        self._server: QuietServer | None = None

    @property
    def arm_endpoint(self) -> str:
        assert self._server is not None
        return self._server.url

    @property
    def port(self) -> int:
        return int(self.arm_endpoint.rsplit(":", 1)[1])

    def start(self) -> AzureMLServer:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", LOGIN_HOST).configure_cert(context)
        self._server = QuietServer(self._answer, self.requests, tls=context).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def add_workspace(self, name: str | None = None) -> FakeWorkspace:
        suffix = uuid.uuid4().hex[:8]
        workspace = FakeWorkspace(str(uuid.uuid4()), f"rg-{suffix}", name or f"ws-{suffix}")
        self.workspaces[(workspace.subscription.lower(), workspace.resource_group.lower(),
                         workspace.name.lower())] = workspace
        return workspace

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, req: Any) -> None:
        parts = urlsplit(req.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path.lower().startswith("/subscriptions/"):
            self._resource_manager(req, path, query)
        elif path == "/common/discovery/instance":
            self._instances(req)
        elif path.endswith("/v2.0/.well-known/openid-configuration"):
            self._openid(req, path.split("/")[1])
        elif path.endswith("/oauth2/v2.0/token") and req.command == "POST":
            self._token(req)
        else:
            _json(req, 404, {"error": "not_found", "error_description": f"no {path}"})

    def _openid(self, req: Any, tenant: str) -> None:
        base = f"https://{LOGIN_HOST}/{tenant}"
        _json(req, 200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "tenant_region_scope": "EU",
        })

    def _instances(self, req: Any) -> None:
        """MSAL's instance discovery, which it asks for after a failed token request."""
        _json(req, 200, {
            "tenant_discovery_endpoint":
                f"https://{LOGIN_HOST}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": LOGIN_HOST, "preferred_cache": "login.windows.net",
                          "aliases": [LOGIN_HOST, "login.windows.net", "login.microsoft.com",
                                      "sts.windows.net"]}]})

    def _token(self, req: Any) -> None:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode()).items()}
        scope = form.get("scope", "").split()[0] if form.get("scope") else ""
        if (form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            _json(req, 401, {"error": "invalid_client",
                             "error_description": "AADSTS7000215: Invalid client secret."})
            return
        if not scope.endswith("/.default"):
            _json(req, 400, {"error": "invalid_scope", "error_description": "AADSTS1002012"})
            return
        audience = scope.removesuffix("/.default")
        token = self.issue_token(audience)
        with self._lock:
            self.token_requests[audience] += 1
        _json(req, 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": token})

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def issue_token(self, audience: str, *, lifetime: int = 3600) -> str:
        now = int(time.time())
        issuer = f"https://sts.windows.net/{self.tenant}/"
        if audience == STORAGE_AUDIENCE and self.storage_issuer:
            issuer = self.storage_issuer
        claims = {"aud": audience, "iss": issuer,
                  "iat": now - 60, "nbf": now - 60, "exp": now + lifetime,
                  "appid": self.client_id, "oid": str(uuid.uuid4()), "tid": self.tenant}
        token = ".".join(_b64(json.dumps(part).encode()) for part in (
            {"typ": "JWT", "alg": "RS256"}, claims)) + "." + _b64(b"not-signed")
        with self._lock:
            self._tokens[token] = audience
        return token

    def _resource_manager(self, req: Any, path: str, query: dict[str, str]) -> None:
        token = req.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            audience = self._tokens.get(token)
        if audience != ARM_AUDIENCE:
            _arm_error(req, 401, "InvalidAuthenticationToken",
                       "The access token is invalid." if audience is None else
                       f"The access token has an invalid audience {audience}.")
            return
        if query.get("api-version") not in API_VERSIONS:
            _arm_error(req, 400, "InvalidApiVersionParameter",
                       f"The api-version '{query.get('api-version')}' is invalid.")
            return
        lowered = path.lower().strip("/")
        parts = lowered.split("/")
        if len(parts) < 8 or parts[2] != "resourcegroups" or _PROVIDER not in lowered:
            _arm_error(req, 404, "InvalidResourceType", "No such resource type.")
            return
        workspace = self.workspaces.get((parts[1], parts[3], parts[7]))
        if workspace is None:
            _arm_error(req, 404, "ResourceNotFound", "The workspace was not found.")
            return
        rest = parts[8:]
        kind = ("default" if rest == ["datastores"] else "secrets" if rest[-1:] == ["listsecrets"]
                else "datastore" if rest[:1] == ["datastores"] else "job" if rest[:1] == ["jobs"]
                else "other")
        with self._lock:
            workspace.calls[kind] += 1
        for what, status in workspace.refusals.items():
            if what in lowered:
                _arm_error(req, status, "AuthorizationFailed" if status == 403 else "Refused",
                           f"The client '{self.client_id}' does not have authorization.")
                return
        if rest == ["datastores"] and req.command == "GET":
            found = [workspace.datastores[workspace.default]] if (
                query.get("isDefault") == "true" and workspace.default) else []
            _json(req, 200, {"value": [self._datastore(workspace, s) for s in found]})
        elif len(rest) in (2, 3) and rest[0] == "datastores":
            store = workspace.datastores.get(rest[1])
            if store is None:
                _arm_error(req, 404, "UserError", f"DataStore {rest[1]} was not found.")
            elif len(rest) == 2 and req.command == "GET":
                _json(req, 200, self._datastore(workspace, store))
            elif rest[2] == "listsecrets" and req.command == "POST":
                self._secrets(req, store)
            else:
                _arm_error(req, 405, "MethodNotAllowed", "Not allowed.")
        elif len(rest) == 2 and rest[0] == "jobs" and req.command == "GET":
            outputs = workspace.jobs.get(rest[1])
            if outputs is None:
                _arm_error(req, 404, "UserError", f"Job {rest[1]} was not found.")
            else:
                _json(req, 200, {"name": rest[1], "properties": {
                    "jobType": "Command", "status": "Completed", "outputs": outputs}})
        else:
            _arm_error(req, 404, "InvalidResourceType", "No such resource type.")

    def _datastore(self, workspace: FakeWorkspace, store: FakeDatastore) -> dict[str, Any]:
        container = ({"filesystem": store.container} if store.kind == "AzureDataLakeGen2"
                     else {"containerName": store.container})
        return {
            "id": f"{workspace.resource_id}/datastores/{store.name}",
            "name": store.name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": store.kind, "accountName": store.account, **container,
                "endpoint": "core.windows.net", "protocol": "https",
                "isDefault": workspace.default == store.name.lower(),
                "credentials": {"credentialsType": store.credentials},
                "serviceDataAccessAuthIdentity": "None",
            },
        }

    def _secrets(self, req: Any, store: FakeDatastore) -> None:
        asked = json.loads(req.body or b"{}")
        if store.credentials == "AccountKey":
            _json(req, 200, {"secretsType": "AccountKey",
                             "key": store.key or self.storage.account_key})
        elif store.credentials == "Sas":
            sas = self._sas(store.container, expiring=bool(asked.get("expirableSecret")))
            _json(req, 200, {"secretsType": "Sas", "sasToken": sas})
        else:
            _arm_error(req, 400, "UserError", "The datastore has no secrets.")

    def _sas(self, container: str, *, expiring: bool) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        lifetime = self.sas_lifetime if expiring else timedelta(days=30)
        sas = generate_container_sas(
            account_name=self.storage.account_name, container_name=container,
            account_key=self.storage.account_key,
            # What a datastore's SAS allows when it is written to as well as read.
            permission=ContainerSasPermissions(read=True, list=True, write=True, add=True,
                                               create=True),
            start=datetime.now(UTC) - timedelta(minutes=5),
            expiry=datetime.now(UTC) + lifetime)
        with self._lock:
            self.issued_sas.append(sas)
        return sas


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(req: Any, status: int, body: Any) -> None:
    serve_bytes(req, json.dumps(body).encode(), status=status, json_body=True, ranges=False)


def _arm_error(req: Any, status: int, code: str, message: str) -> None:
    _json(req, status, {"error": {"code": code, "message": message}})


@dataclass
class AzureMLSetup:
    """One test's workspace on the session's fake, with a datastore `blobs` (account key, the
    default) on a container of its own, and what `laden` needs to reach them."""

    server: AzureMLServer
    workspace: FakeWorkspace
    container: str

    @property
    def storage(self) -> AzuriteServer:
        return self.server.storage

    def put(self, key: str, data: bytes, *, container: str | None = None) -> None:
        self.storage.upload(container or self.container, key, data)

    def new_container(self, name: str) -> str:
        self.storage.create_container(name)
        return name

    def workspace_args(self) -> list[str]:
        """`laden get` options naming this test's workspace."""
        ws = self.workspace
        return ["--azureml-workspace", ws.name, "--azureml-resource-group", ws.resource_group,
                "--azureml-subscription", ws.subscription]

    def workspace_settings(self) -> dict[str, str]:
        ws = self.workspace
        return {"azureml_workspace": ws.name, "azureml_resource_group": ws.resource_group,
                "azureml_subscription": ws.subscription}

    def long_address(self, datastore: str, path: str) -> str:
        ws = self.workspace
        return (f"azureml://subscriptions/{ws.subscription}/resourcegroups/{ws.resource_group}/"
                f"workspaces/{ws.name}/datastores/{datastore}/paths/{path}")

    @property
    def storage_endpoint(self) -> str:
        """The datastores' accounts, as laden's azureml_storage_endpoint gives them."""
        return f"https://127.0.0.1:{self.storage.port}/{{account}}"
