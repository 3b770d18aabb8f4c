"""Azure ML datastores and job outputs: `azureml://` addresses (forms in `azureml_addresses`).

An address resolves through Azure Resource Manager (`azureml_arm`, `azureml_resolving`) to a
blob container of a storage account and a way to sign in to it: the datastore's account key or
SAS, asked to expire in an hour, or your own Azure credential. That credential is
azure-identity's `DefaultAzureCredential` (the environment, workload identity, managed identity,
the Azure CLI, ...), which also signs the Resource Manager calls. The bytes are then the Azure
Blob source's, given `az://CONTAINER/BLOB`, the account and the secret: parallel ranges pinned to
the ETag, resume, Content-MD5. The workspace of a short address: `azureml_workspace`.

What is resolved lives in this process's memory only, for `RESOLVED_FOR` seconds, well inside
the hour a secret is asked to last: the journal keeps the `azureml://` address, and a resume
in another process resolves it again. A storage refusal (401, 403) met with a resolution older
than `FRESH` seconds means its SAS may have expired or its key been rotated: the address is
resolved again and the read tried again (the engine's `reresolve`, as for an expired signed
address); a refusal with a fresh one is final. azure-identity and httpx are imported only when
an address is resolved.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..core.config import Config
from ..core.errors import InputError, LadenError, Permanent, Retryable
from ..core.known_sources import known_source
from ..core.options import DownloadOptions
from . import cloud, listing
from .azureml_addresses import AzureMLAddress, parse_address
from .azureml_arm import ResourceManager, described
from .azureml_resolving import Resolved, resolve, storage_endpoint
from .azureml_workspace import find_workspace, resource_manager, workspace_settings
from .base import ListedObject, RangeReader, RemoteInfo, Source

T = TypeVar("T")

RESOLVED_FOR = 20 * 60
"""Seconds a resolution (and the secret in it) is used before Resource Manager is asked again."""
FRESH = 10
"""A resolution younger than this that storage refuses is not resolved again: it is wrong."""
STORAGE_ROLE = ("the Storage Blob Data Reader role on the account (Storage Blob Data Contributor "
                "to upload)")


class AzureMLSource(Source):
    known = known_source("azureml")
    SUPPORTS_LISTING = True

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._lock = threading.RLock()
        self._resolved: dict[tuple[Any, ...], Resolved] = {}
        self._managers: dict[tuple[Any, ...], ResourceManager] = {}
        self._credential: Any = None
        self._blob_source: Any = None

    # -- the Source interface: the Azure Blob source's, in azureml:// terms ------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        address = parse_address(url)
        if not address.path or address.path.endswith("/"):
            raise InputError(f"{url} names a folder, not a file (laden get expands folders)")

        def probe(resolved: Resolved, blob_options: DownloadOptions) -> RemoteInfo:
            remote = self._blobs().probe(resolved.blob_url(address.path), blob_options)
            return dataclasses.replace(remote, url=url, final_url=url)

        return self._in_storage(address, options, url, probe)

    def current_version(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """The blob's properties, as the Azure Blob source asks them: a rerun's check."""
        address = parse_address(url)

        def current(resolved: Resolved, blob_options: DownloadOptions) -> RemoteInfo:
            remote = self._blobs().current_version(resolved.blob_url(address.path),
                                                   blob_options)
            return dataclasses.replace(remote, url=url, final_url=url)

        return self._in_storage(address, options, url, current)

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        address = parse_address(remote.url)

        def open_range(resolved: Resolved, blob_options: DownloadOptions) -> RangeReader:
            blob_url = resolved.blob_url(address.path)
            inner = dataclasses.replace(remote, url=blob_url, final_url=blob_url)
            reader = self._blobs().open_range(inner, start, end, blob_options)
            return _Reader(reader, functools.partial(
                self._while_reading, resolved=resolved, blob_url=blob_url, url=remote.url))

        return self._in_storage(address, options, remote.url, open_range)

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        return listing.is_folder_key(parse_address(url).path, options)

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        address = parse_address(url)

        def listed(resolved: Resolved, blob_options: DownloadOptions) -> Iterator[ListedObject]:
            found = self._blobs().list(resolved.blob_url(address.path), blob_options)
            return iter([ListedObject(
                url=address.with_path(resolved.relative(cloud.split_address(item.url)[1])),
                relative_path=item.relative_path, size=item.size) for item in found])

        return self._in_storage(address, options, url, listed)

    def close(self) -> None:
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
            blobs, self._blob_source = self._blob_source, None
            credential, self._credential = self._credential, None
            self._resolved.clear()
        for manager in managers:
            manager.close()
        if blobs is not None:
            blobs.close()
        if credential is not None:
            credential.close()

    def in_storage(self, url: str, options: DownloadOptions,
                   call: Callable[[Any, str, DownloadOptions], T]) -> T:
        """`call(blob_source, blob_url, blob_options)` on the blob `url` resolves to: the Azure
        Blob source, `az://CONTAINER/BLOB` and the options that sign in to its account (the
        uploader's way in). Resolved again, and called again, once when storage refuses a
        secret that may have expired; errors are in the address's terms."""
        address = parse_address(url)
        return self._in_storage(address, options, url, lambda resolved, blob_options: call(
            self._blobs(), resolved.blob_url(address.path), blob_options))

    # -- storage calls, with a second try after a refused secret -----------------------------

    def _in_storage(self, address: AzureMLAddress, options: DownloadOptions, url: str,
                    call: Callable[[Resolved, DownloadOptions], T]) -> T:
        resolved = self._resolve(address, options)
        try:
            return call(resolved, resolved.options(options))
        except LadenError as exc:
            if not (_refused(exc) and resolved.age() >= FRESH):
                raise self._shown(exc, resolved, resolved.blob_url(address.path), url) from None
        resolved = self._resolve(address, options, stale=resolved)
        try:
            return call(resolved, resolved.options(options))
        except LadenError as exc:
            raise self._shown(exc, resolved, resolved.blob_url(address.path), url) from None

    def _shown(self, exc: LadenError, resolved: Resolved, blob_url: str,
               url: str) -> LadenError:
        """`exc` in the address's terms: the azureml:// address instead of the blob's, and a
        refusal that names the datastore and what it would take."""
        if _refused(exc):
            status = getattr(exc, "status", None)
            how = ("the datastore's key or SAS" if resolved.secrets else
                   f"your Azure identity, which needs {STORAGE_ROLE}")
            return Permanent(
                f"the storage account of datastore {resolved.datastore.name} of "
                f"{described(resolved.workspace)} refused access to {url} (HTTP {status}), "
                f"signed in with {how}", status=status)
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0].replace(blob_url, url), *exc.args[1:])
        return exc

    def _while_reading(self, exc: LadenError, *, resolved: Resolved, blob_url: str,
                       url: str) -> LadenError:
        if _refused(exc) and resolved.age() >= FRESH:
            self._forget(resolved)
            again = Retryable(f"the storage account of datastore {resolved.datastore.name} "
                              "refused a secret it took before; asking Azure ML for a fresh one",
                              status=getattr(exc, "status", None))
            again.reresolve = True  # type: ignore[attr-defined]
            return again
        return self._shown(exc, resolved, blob_url, url)

    # -- resolving ---------------------------------------------------------------------------

    def _resolve(self, address: AzureMLAddress, options: DownloadOptions, *,
                 stale: Resolved | None = None) -> Resolved:
        """The address's resolution, from memory when it is recent and not `stale`."""
        endpoint, scope = resource_manager(options, self._config, os.environ)
        settings = workspace_settings(options, self._config)
        storage = storage_endpoint(options, self._config, os.environ)
        key = (endpoint, address.workspace, tuple(settings.values()), address.datastore,
               address.job, address.output, storage)
        with self._lock:
            found = self._resolved.get(key)
            if found is None or found is stale or found.age() > RESOLVED_FOR:
                workspace = find_workspace(address.workspace, settings, os.environ, os.getcwd())
                found = self._resolved[key] = resolve(
                    self._manager(endpoint, scope, options), workspace, address, storage)
            return found

    def _forget(self, resolved: Resolved) -> None:
        with self._lock:
            for key in [k for k, v in self._resolved.items() if v is resolved]:
                del self._resolved[key]

    # -- clients -----------------------------------------------------------------------------

    def _manager(self, endpoint: str, scope: str, options: DownloadOptions) -> ResourceManager:
        from .http import make_ssl_context, proxy_for

        proxy = proxy_for(endpoint, options)
        key = (endpoint, scope, options.ca_bundle, options.insecure, proxy)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = self._managers[key] = ResourceManager(
                    endpoint, scope, self._azure_credential(),
                    verify=make_ssl_context(options.ca_bundle, insecure=options.insecure),
                    proxy=proxy, connect_timeout=self._config.connect_timeout,
                    read_timeout=self._config.stall_timeout)
            return manager

    def _azure_credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                # Its warnings would reach stderr through logging's last resort; laden says
                # what failed in its own one line (see azureml_arm).
                logging.getLogger("azure.identity").addHandler(logging.NullHandler())
                # On an Azure ML compute with a user-assigned identity, that identity's client
                # id is DEFAULT_IDENTITY_CLIENT_ID; AZURE_CLIENT_ID, when set, still wins.
                chosen = os.environ.get("DEFAULT_IDENTITY_CLIENT_ID")
                self._credential = DefaultAzureCredential(**(
                    {"managed_identity_client_id": chosen}
                    if chosen and not os.environ.get("AZURE_CLIENT_ID") else {}))
            return self._credential

    def _blobs(self) -> Any:
        with self._lock:
            if self._blob_source is None:
                from .azure import AzureBlobSource

                # The settings file's azure_* keys name other accounts: not this one's.
                self._blob_source = AzureBlobSource(
                    dataclasses.replace(self._config, extra={}),
                    token_credential=self._azure_credential())
            return self._blob_source


class _Reader:
    """The Azure Blob source's reader, its errors in the address's terms."""

    def __init__(self, reader: RangeReader, shown: Callable[[LadenError], LadenError]) -> None:
        self._reader = reader
        self._shown = shown

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._reader.readinto(buffer)
        except LadenError as exc:
            raise self._shown(exc) from None

    def close(self) -> None:
        self._reader.close()


def _refused(exc: LadenError) -> bool:
    return isinstance(exc, Permanent) and getattr(exc, "status", None) in (401, 403)
