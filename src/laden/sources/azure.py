"""Azure Blob Storage through azure-storage-blob.

Addresses: `az://container/blob` (the account comes from the connection string or account
URL settings) and `https://ACCOUNT.blob.core.windows.net/container/blob[?SAS]`, which the
registry routes here. Folders and globs as in `listing`.

The probe is a GET of the blob's first bytes (`PROBE_RANGE`): its answer gives the size, the
ETag (the validator) and `Content-MD5`, which Azure keeps for the whole blob when it was
uploaded in one request or set by the uploader, and a small blob's bytes come with it. A
rerun's check reads the properties instead. Each range is a `download_blob(offset, length)`
pinned with the ETag and `MatchConditions.IfNotModified`: 412 means the blob changed, and
every answer's ETag and total size are compared with the probe's as well (`versions`), in case
something on the way ignores the condition. The SDK fetches a range in chunks of `CHUNK` bytes
(it holds one chunk in memory per connection), so those are kept small.

Credentials, first found wins: a connection string (`azure_connection_string[_file]`, then
`AZURE_STORAGE_CONNECTION_STRING`); else the account URL (`azure_account_url`, the address
itself, or `AZURE_STORAGE_ACCOUNT`) with an account key (`azure_account_key[_file]`,
`AZURE_STORAGE_KEY`) or a SAS (`azure_sas_token[_file]`, `AZURE_STORAGE_SAS_TOKEN`, or the
address's query); else the token credential the source was made with, if any; else anonymous
access (public containers).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..core.config import MAX_CONNECTIONS, Config
from ..core.errors import InputError, LadenError, Permanent, RemoteChanged, Retryable
from ..core.known_sources import known_source
from ..core.options import DownloadOptions
from ..core.snapshots import ChecksumInfo
from ..core.version import __version__
from . import azure_answers as answers
from . import cloud, listing
from .base import PROBE_BODY, ListedObject, RangeReader, RemoteInfo, Source
from .foreign_errors import Becomes, ErrorTable, Rows, Translate, first_line
from .requests_log import logged_request
from .statuses import Later, Wording

CHUNK = 4 * 1024 * 1024
PROBE_RANGE = min(PROBE_BODY, 256 * 1024)
"""The probe's range. The SDK reads the whole first answer before it returns, so a larger blob
pays these bytes twice; a quarter of a MiB holds the small files of a dataset or a folder of
images, and is a few per cent of a blob of ten MiB."""
_CREDENTIAL_CODES = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo",
                     "AuthorizationPermissionMismatch", "AuthorizationSourceIPMismatch",
                     "NoAuthenticationInformation", "AuthorizationResourceTypeMismatch"}
_REFUSED_ACCESS = ("Azure refused access to {url}: the connection string, key or SAS is wrong "
                   "or does not allow reading it ({said})")
_WORDING = Wording(
    slow_down="Azure asks for fewer requests ({said})",
    server_error="Azure error {said} for {url}",
    refused="Azure refused {url}: {said} {first_line}",
    statuses={401: _REFUSED_ACCESS, 403: _REFUSED_ACCESS, 404: "no such Azure blob: {url}"},
    changed={412: "{url} changed during the download (its ETag no longer matches)",
             416: "{url} changed during the download (it is shorter now)"},
    codes={"ConditionNotMet": 412, "BlobNotFound": 404, "ContainerNotFound": 404,
           "InvalidRange": 416, **dict.fromkeys(_CREDENTIAL_CODES, 403),
           "ServerBusy": 503, "OperationTimedOut": 503},
    code_lines={"ContainerNotFound": "no such Azure container: {container}"},
)
_READING = _WORDING.with_lines(changed={404: "{url} was deleted during the download"})
"""Reads are pinned to the probed ETag: a blob gone since is a change, not a mistake."""


@dataclass(frozen=True)
class BlobAddress:
    container: str
    blob: str
    account_url: str | None
    """The account's endpoint for https:// addresses; None for az://."""
    sas: str | None = None
    """A SAS carried in the address's query."""

    def url_for(self, blob: str) -> str:
        if self.account_url is None:
            return cloud.object_url("az", self.container, blob)
        query = f"?{self.sas}" if self.sas else ""
        return f"{self.account_url}/{self.container}/{quote(blob, safe='/~')}{query}"


def parse_address(url: str) -> BlobAddress:
    if url.lower().startswith("az://"):
        container, blob = cloud.split_address(url)
        return BlobAddress(container, blob, None)
    parts = urlsplit(url)
    container, _, blob = parts.path.lstrip("/").partition("/")
    if not container:
        raise InputError(f"{url} names no container")
    return BlobAddress(unquote(container), unquote(blob), f"{parts.scheme}://{parts.netloc}",
                       parts.query or None)


class AzureBlobSource(Source):
    known = known_source("az")
    SUPPORTS_LISTING = True

    def __init__(self, config: Config | None = None, *, token_credential: Any = None) -> None:
        """One source for every Azure Blob download of a manager.

        Args:
            config: The manager's settings.
            token_credential: An azure-core `TokenCredential` to sign in with wherever a
                download gives no connection string, key or SAS of its own, instead of
                anonymous access. Whoever passes one has chosen the credential (the Azure ML
                source, for identity-based datastores), so the `AZURE_STORAGE_*` environment
                is not read either.
        """
        self._config = config or Config()
        self._clients: cloud.ClientCache[Any] = cloud.ClientCache()
        self._token_credential = token_credential
        self._environment: Mapping[str, str] = os.environ if token_credential is None else {}

    # -- the probe ---------------------------------------------------------------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """A GET of the blob's first `PROBE_RANGE` bytes: its headers carry the size (the
        Content-Range total), ETag and `x-ms-blob-content-md5`, and a blob no larger comes
        whole with them, so a small blob costs one request. An empty blob (a range of it is
        refused) and an answer without those headers are asked again as properties. (The SDK
        asks a page blob's page ranges as well.)"""
        from azure.core.exceptions import HttpResponseError

        address = parse_address(url)
        if not address.blob or address.blob.endswith("/"):
            raise InputError(f"{url} names a folder, not a file (laden get expands folders)")
        client = self._service(address, options).get_blob_client(address.container, address.blob)
        answered = answers.Answer()
        with ERRORS.translating(url=url, container=address.container, reading=False), \
                logged_request("GET", url, 0, PROBE_RANGE) as answer:
            try:
                stream = client.download_blob(offset=0, length=PROBE_RANGE, max_concurrency=1,
                                              raw_response_hook=answered)
            except HttpResponseError as exc:
                if exc.status_code != 416:
                    raise
                stream = None  # nothing at byte 0: an empty blob
            answer.status = answered.status
        remote = None if stream is None else answers.remote_from(url, address.blob,
                                                                  answered.headers)
        if remote is None:
            return self._properties(url, options)
        if remote.size <= PROBE_RANGE:
            remote = remote.carrying(stream.readall())  # read with the answer: no request
        return remote

    def current_version(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """The properties, not the probe: a rerun asks before it keeps a file, without bytes."""
        return self._properties(url, options)

    def _properties(self, url: str, options: DownloadOptions) -> RemoteInfo:
        address = parse_address(url)
        client = self._service(address, options).get_blob_client(address.container, address.blob)
        with ERRORS.translating(url=url, container=address.container, reading=False), \
                logged_request("HEAD", url) as answer:
            props = client.get_blob_properties()
            answer.status = 200
        checksums = []
        md5 = props.content_settings.content_md5
        if md5 and len(md5) == 16:
            checksums.append(ChecksumInfo("md5", bytes(md5).hex(), answers.MD5_ORIGIN))
        return RemoteInfo(
            url=url,
            final_url=url,
            size=int(props.size),
            supports_ranges=True,
            etag=props.etag,
            last_modified=cloud.http_date(props.last_modified),
            filename=cloud.file_name(address.blob),
            checksums=tuple(checksums),
            version=props.etag,
            extra={"blob_type": str(getattr(props.blob_type, "value", props.blob_type)),
                   "content_type": props.content_settings.content_type or "",
                   **({"version_id": props.version_id} if props.version_id else {})},
        )

    # -- the bytes ---------------------------------------------------------------------------

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        from azure.core import MatchConditions

        address = parse_address(remote.url)
        client = self._service(address, options).get_blob_client(address.container, address.blob)
        pinned: dict[str, Any] = {}
        if remote.etag:
            pinned = {"etag": remote.etag, "match_condition": MatchConditions.IfNotModified}
        with ERRORS.translating(url=remote.url, container=address.container, reading=True), \
                logged_request("GET", remote.url, start, end) as answer:
            stream = client.download_blob(
                offset=start, length=None if end is None else end - start,
                max_concurrency=1,
                # Called for every response, the first and each later chunk's.
                raw_response_hook=answers.AnswerCheck(
                    remote, address.url_for(address.blob).split("?", 1)[0]),  # never a SAS
                **pinned,
            )
            answer.status = "opened"
        return _BlobReader(stream, remote.url, address)

    # -- folders -----------------------------------------------------------------------------

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        return listing.is_folder_key(parse_address(url).blob, options)

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        address = parse_address(url)
        chosen = listing.selection(address.blob, options)
        container = self._service(address, options).get_container_client(address.container)
        with ERRORS.translating(url=url, container=address.container, reading=False):
            blobs = container.list_blobs(name_starts_with=chosen.prefix or None)
            items = [(b.name, b.size) for b in blobs]
        return listing.expand(url, items, chosen, address.url_for)

    # -- clients and credentials -------------------------------------------------------------

    def service(self, address: BlobAddress, options: DownloadOptions) -> Any:
        """The `BlobServiceClient` of `address`'s account, signed in as the options say; one
        per account and credential, shared by downloads and uploads (`azure_upload`)."""
        return self._service(address, options)

    def _service(self, address: BlobAddress, options: DownloadOptions) -> Any:
        config = self._config
        environment = self._environment
        connection = cloud.secret(options, config, "azure_connection_string") or environment.get(
            "AZURE_STORAGE_CONNECTION_STRING")
        anonymous = cloud.flag(options, config, "anonymous")
        account_url = address.account_url
        if account_url is None:
            if connection and not anonymous:
                return self._clients.get(("connection", connection),
                                         lambda: self._make(connection_string=connection))
            account_url = cloud.setting(options, config, "azure_account_url")
            if not account_url and environment.get("AZURE_STORAGE_ACCOUNT"):
                account = environment["AZURE_STORAGE_ACCOUNT"]
                account_url = f"https://{account}.blob.core.windows.net"
            if not account_url:
                raise InputError(
                    "az:// addresses need an account: give --azure-connection-string-file or "
                    "--azure-account-url, or set AZURE_STORAGE_CONNECTION_STRING or "
                    "AZURE_STORAGE_ACCOUNT")
            account_url = str(account_url).rstrip("/")
        elif connection and not anonymous and _connection_account(connection) == _account_name(
                account_url):
            return self._clients.get(("connection", connection),
                                     lambda: self._make(connection_string=connection))
        credential: Any = None
        if not anonymous:
            key = cloud.secret(options, config, "azure_account_key") or environment.get(
                "AZURE_STORAGE_KEY")
            sas = address.sas or cloud.secret(options, config, "azure_sas_token") or (
                environment.get("AZURE_STORAGE_SAS_TOKEN"))
            if key:
                credential = {"account_name": _account_name(account_url), "account_key": key}
            elif sas:
                credential = sas.lstrip("?")
            else:
                credential = self._token_credential
        cache_key = ("account", account_url, str(credential))
        return self._clients.get(cache_key, lambda: self._make(account_url=account_url,
                                                               credential=credential))

    def _make(self, *, connection_string: str | None = None, account_url: str | None = None,
              credential: Any = None) -> Any:
        import requests
        import requests.adapters
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import BlobServiceClient

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4,
                                                pool_maxsize=MAX_CONNECTIONS * 2, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        settings: dict[str, Any] = {
            "transport": RequestsTransport(
                session=session, session_owner=False,
                connection_timeout=self._config.connect_timeout,
                read_timeout=self._config.stall_timeout),
            "retry_total": 0,  # the engine retries
            "max_single_get_size": CHUNK,
            "max_chunk_get_size": CHUNK,
            "user_agent": f"laden/{__version__}",
        }
        try:
            if connection_string:
                return BlobServiceClient.from_connection_string(connection_string, **settings)
            return BlobServiceClient(str(account_url), credential=credential, **settings)
        except ValueError as exc:
            what = "connection string" if connection_string else f"account URL {account_url}"
            raise InputError(f"the Azure {what} cannot be used: {exc}") from None

    def close(self) -> None:
        for client in self._clients.clear():
            client.close()


class _BlobReader:
    """The SDK's chunked download stream as a RangeReader, its errors classified."""

    def __init__(self, stream: Any, url: str, address: BlobAddress) -> None:
        self._stream = stream
        self._url = url
        self._address = address

    def readinto(self, buffer: memoryview) -> int:
        try:
            chunk = self._stream.read(len(buffer))
        except Exception as exc:  # noqa: BLE001 - translated by the table
            error = ERRORS.translate(exc, url=self._url, container=self._address.container,
                                      reading=True)
            if error is exc:
                raise
            raise error from None
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._stream = None


def _account_name(account_url: str) -> str:
    """`https://acct.blob.core.windows.net` -> acct; `http://127.0.0.1:10000/acct` -> acct."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        local = True
    except ValueError:
        local = host == "localhost"
    if local:
        return parts.path.strip("/").split("/")[0]
    return host.split(".")[0]


def _connection_account(connection: str) -> str | None:
    for item in connection.split(";"):
        name, _, value = item.partition("=")
        if name.strip().lower() == "accountname":
            return value.strip()
    return None


def _response_error(exc: Any, facts: Any) -> LadenError:
    """An HttpResponseError: the service's answer, with its status and error code."""
    code = getattr(exc, "error_code", None)
    wording = _READING if facts["reading"] else _WORDING
    return wording.error(exc.status_code or 0, code=str(getattr(code, "value", code) or ""),
                         url=facts["url"], container=facts["container"],
                         first_line=Later(lambda: first_line(exc)))


def azure_rows(response_error: Translate, invalid: str) -> Rows:
    """azure-core's exceptions, an answer's (`HttpResponseError`) worded by `response_error`
    and a request the SDK refuses to make by the line `invalid`: the rows downloads and
    uploads share."""
    from azure.core import exceptions as az

    return {
        (az.ServiceRequestError, az.ServiceResponseError): Becomes(
            Retryable, "connection to Azure failed for {url}: {first_line}"),
        az.HttpResponseError: response_error,
        (az.AzureError, OSError): Becomes(Retryable, "Azure error for {url}: {first_line}"),
        ValueError: Becomes(Permanent, invalid),
    }


def _azure_rows() -> Rows:
    from azure.core import exceptions as az

    return {
        az.ResourceModifiedError: Becomes(
            RemoteChanged, "{url} changed during the download (its ETag no longer matches)"),
        **azure_rows(_response_error, "Azure cannot read {url}: {first_line}"),
    }


ERRORS = ErrorTable(_azure_rows)
"""azure-core's exceptions. Facts: `url`, `container`, `reading` (a range of a probed
version)."""
