"""Google Cloud Storage through google-cloud-storage and google-auth.

`gs://bucket/object` is one object; `gs://bucket/prefix/` and globs are folders (see `listing`).
The probe is a media GET of the object: its headers give the size, the generation (the
validator) and `x-goog-hash` (`md5`, absent for composite objects, and `crc32c`), and a small
object's bytes come with them. A rerun's check reads the metadata instead. Each range is a
media GET of that generation with `ifGenerationMatch`, made on google-auth's
`AuthorizedSession` (the transport the storage client uses itself) with `stream=True`, so the
bytes are read with `readinto` from the underlying `http.client` response instead of through
the client's in-memory downloads. A 404 or 412 on a range means the generation is gone: the
object changed. So does an answer whose `x-goog-generation`, total size or `x-goog-hash`
differs from the probe's (`versions`): a proxy or emulator that ignores `ifGenerationMatch`
must not get another generation into the file.

`Accept-Encoding: gzip` asks for the stored bytes even when an object is kept gzip-encoded
(no decompressive transcoding), so sizes, ranges and checksums describe the same bytes.

Credentials: `gcs_credentials_file` (service account or authorized-user JSON), else
application default credentials, else anonymous access (public buckets). With an emulator
endpoint (`gcs_endpoint_url` or `STORAGE_EMULATOR_HOST`) requests are anonymous unless a
credentials file is given, so nothing looks for a metadata server.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..core.checksums import normalise_digest
from ..core.config import MAX_CONNECTIONS, Config
from ..core.errors import (
    InputError,
    LadenError,
    Permanent,
    RangeNotSupported,
    RemoteChanged,
    Retryable,
)
from ..core.known_sources import known_source
from ..core.options import DownloadOptions
from ..core.snapshots import ChecksumInfo
from ..core.version import __version__
from . import cloud, listing, versions
from . import gcs_answers as answers
from .base import PROBE_BODY, ListedObject, RangeReader, ReadAdapter, RemoteInfo, Source
from .foreign_errors import Becomes, ErrorTable, Rows, first_line
from .http_headers import parse_content_range
from .http_reader import HttpRangeReader
from .requests_log import logged_request
from .statuses import Wording

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"
READ_WRITE = "https://www.googleapis.com/auth/devstorage.read_write"
CREDENTIALS_LIMIT = 1 << 20
"""A service account JSON is a few KiB: anything past this is not one."""


_WORDING = Wording(
    slow_down="GCS asks for fewer requests (HTTP {status}){detail}",
    server_error="GCS error {status} for {url}{detail}",
    refused="GCS refused {url} (HTTP {status}){detail}",
    statuses={
        401: "GCS refused the credentials for {url}{detail}",
        403: "access denied to {url}: the credentials are missing or lack permission{detail}",
        404: "no such GCS object: {url}",
    },
)
_READING = _WORDING.with_lines(changed=dict.fromkeys(
    (404, 412), "{url} changed during the download (generation {generation} is gone)"))
"""A range is a read of one generation: 404 and 412 mean that generation is gone."""
_LISTING = _WORDING.with_lines(statuses={404: "no such GCS bucket: {bucket}"})
_READ_HEADERS = {"Accept-Encoding": "gzip", "User-Agent": f"laden/{__version__}"}


@dataclass(frozen=True)
class GcsClients:
    storage: Any
    """google.cloud.storage.Client, for metadata and listings."""
    session: Any
    """google.auth.transport.requests.AuthorizedSession, for the bytes."""
    endpoint: str


class GcsSource(Source):
    known = known_source("gs")
    SUPPORTS_LISTING = True

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._clients: cloud.ClientCache[GcsClients] = cloud.ClientCache()

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for a request, the uploader's too."""
        return (self._config.connect_timeout, self._config.stall_timeout)

    # -- the probe ---------------------------------------------------------------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """A media GET of the object's current generation: its headers carry the generation,
        size and `x-goog-hash`, and an object no larger than `PROBE_BODY` and one segment is
        read whole from it, so a small object costs one request. An answer without those
        headers (a proxy that drops them) is asked again as metadata."""
        bucket, key = cloud.split_address(url)
        if not key or key.endswith("/"):
            raise InputError(f"{url} names a folder, not a file (laden get expands folders)")
        gcs = self._client(options)
        with ERRORS.translating(url=url, wording=_WORDING), \
                logged_request("GET", url) as answer:
            response = gcs.session.request("GET", _media_url(gcs, bucket, key), stream=True,
                                           headers=_READ_HEADERS, timeout=self.timeout)
            answer.status = response.status_code
        try:
            status = response.status_code
            detail = "" if status in (200, 404) else answers.error_detail(response)
            remote = answers.remote_from(url, key, response.headers) if status == 200 else None
            if remote is not None and remote.size <= min(PROBE_BODY,
                                                         self._config.min_segment_size):
                remote = answers.with_body(remote, response)
        finally:
            response.close()  # a larger object's bytes unread: this connection is not reused
        if status == 404:
            raise self._missing(gcs, bucket, url)
        if status != 200:
            raise _WORDING.error(status, url=url, detail=detail)
        return remote if remote is not None else self._metadata(url, options)

    def current_version(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """The metadata, not the probe: a rerun asks before it keeps a file, without its bytes."""
        return self._metadata(url, options)

    def _metadata(self, url: str, options: DownloadOptions) -> RemoteInfo:
        bucket, key = cloud.split_address(url)
        gcs = self._client(options)
        with ERRORS.translating(url=url, wording=_WORDING), \
                logged_request("GET metadata", url) as answer:
            blob = gcs.storage.bucket(bucket).get_blob(key, timeout=self.timeout, retry=None)
            answer.status = 404 if blob is None else 200
        if blob is None:
            raise self._missing(gcs, bucket, url)
        checksums = []
        for value, algorithm in ((blob.md5_hash, "md5"), (blob.crc32c, "crc32c")):
            if value:
                checksums.append(ChecksumInfo(algorithm, normalise_digest(algorithm, value),
                                              answers.ORIGINS[algorithm]))
        generation = str(blob.generation)
        return RemoteInfo(
            url=url,
            final_url=url,
            size=int(blob.size),
            supports_ranges=True,
            etag=blob.etag,
            last_modified=cloud.http_date(blob.updated),
            filename=cloud.file_name(key),
            checksums=tuple(checksums),
            version=generation,
            extra={"generation": generation, "content_type": blob.content_type or ""},
        )

    def _missing(self, gcs: GcsClients, bucket: str, url: str) -> LadenError:
        try:
            exists = gcs.storage.lookup_bucket(bucket, timeout=self.timeout, retry=None)
        except Exception:  # noqa: BLE001 - only a finer message was at stake
            exists = True
        if exists is None:
            return Permanent(f"no such GCS bucket: {bucket}", status=404)
        return Permanent(f"no such GCS object: {url}", status=404)

    # -- the bytes ---------------------------------------------------------------------------

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        bucket, key = cloud.split_address(remote.url)
        gcs = self._client(options)
        generation = remote.version
        media = _media_url(gcs, bucket, key)
        if generation:
            media += f"&generation={generation}&ifGenerationMatch={generation}"
        headers = dict(_READ_HEADERS)
        ranged = start > 0 or end is not None
        if ranged:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with ERRORS.translating(url=remote.url, wording=_WORDING), \
                logged_request("GET", remote.url, *((start, end) if ranged else ())) as answer:
            response = gcs.session.request("GET", media, headers=headers, stream=True,
                                           timeout=self.timeout)
            answer.status = response.status_code
        try:
            _check(response, remote, start, end, ranged)
        except BaseException:
            response.close()
            raise
        raw = response.raw
        if isinstance(getattr(raw, "_fp", None), http.client.HTTPResponse):
            return HttpRangeReader(raw)
        return ReadAdapter(raw, response.close)

    # -- folders -----------------------------------------------------------------------------

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        return listing.is_folder_key(cloud.split_address(url)[1], options)

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        bucket, key = cloud.split_address(url)
        chosen = listing.selection(key, options)
        gcs = self._client(options)
        with ERRORS.translating(url=url, bucket=bucket, wording=_LISTING):
            blobs = gcs.storage.list_blobs(bucket, prefix=chosen.prefix or None,
                                           timeout=self.timeout, retry=None)
            items = [(b.name, b.size) for b in blobs]
        return listing.expand(url, items, chosen, lambda k: cloud.object_url("gs", bucket, k))

    # -- clients and credentials -------------------------------------------------------------

    def clients(self, options: DownloadOptions, *, write: bool = False) -> GcsClients:
        """The clients for `options`, shared with the uploader (`gcs_upload`); `write` asks
        for credentials scoped to write objects too (uploads)."""
        return self._client(options, READ_WRITE if write else READ_ONLY)

    def _client(self, options: DownloadOptions, scope: str = READ_ONLY) -> GcsClients:
        config = self._config
        endpoint = cloud.setting(options, config, "gcs_endpoint_url") or os.environ.get(
            "STORAGE_EMULATOR_HOST")
        if endpoint and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        credentials_file = cloud.setting(options, config, "gcs_credentials_file")
        anonymous = cloud.flag(options, config, "anonymous")
        key = (endpoint, credentials_file, anonymous, scope)
        return self._clients.get(key, lambda: self._make_client(
            endpoint, credentials_file, anonymous, scope))

    def _make_client(
        self, endpoint: str | None, credentials_file: str | None, anonymous: bool,
        scope: str = READ_ONLY,
    ) -> GcsClients:
        import google.auth
        import requests.adapters
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import storage  # type: ignore[import-untyped]

        credentials: Any
        if credentials_file:
            path = os.path.expanduser(str(credentials_file))
            # Read here, bounded: google-auth would read a FIFO or /dev/zero for ever.
            data = cloud.read_small_file(path, "gcs_credentials", CREDENTIALS_LIMIT)
            try:
                info = json.loads(data)
                if not isinstance(info, dict):
                    raise ValueError("it is not a JSON object")
                credentials, _ = google.auth.load_credentials_from_dict(info, scopes=[scope])
            except (DefaultCredentialsError, OSError, ValueError, RecursionError) as exc:
                # google-auth wraps the reason: ("Failed to load ... from FILE", reason)
                reason = exc.args[-1] if len(exc.args) > 1 else exc
                raise InputError(f"the Google credentials file {path} cannot be used: "
                                 f"{first_line(reason)}") from None
        elif anonymous or endpoint:
            credentials = AnonymousCredentials()
        else:
            try:
                credentials, _ = google.auth.default(scopes=[scope])
            except DefaultCredentialsError:
                credentials = AnonymousCredentials()  # public buckets need none
        client_options = {"api_endpoint": endpoint} if endpoint else None
        client = storage.Client(project=None, credentials=credentials,
                                client_options=client_options)
        session = AuthorizedSession(credentials)
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=MAX_CONNECTIONS * 2, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return GcsClients(storage=client, session=session, endpoint=(endpoint or DEFAULT_ENDPOINT)
                    .rstrip("/"))

    def close(self) -> None:
        for gcs in self._clients.clear():
            gcs.session.close()


def _check(response: Any, remote: RemoteInfo, start: int, end: int | None, ranged: bool) -> None:
    status = response.status_code
    if status in (200, 206):
        versions.check_answer(answers.pinned(remote), answers.validators(response.headers, status),
                              remote.url)
    if status == 206 and ranged:
        parsed = parse_content_range(response.headers.get("content-range"))
        want_end = end if end is not None else remote.size
        if parsed is None or parsed[0] != start or parsed[1] != want_end:
            raise Retryable(f"GCS answered bytes {response.headers.get('content-range')!r} to a "
                            f"request for bytes {start}-{(want_end or 0) - 1} of {remote.url}")
        return
    if status == 200:
        if ranged:
            raise RangeNotSupported(f"GCS sent the whole of {remote.url} to a ranged request")
        return
    raise _READING.error(status, url=remote.url, generation=remote.version, detail="")


def _media_url(gcs: GcsClients, bucket: str, key: str) -> str:
    return (f"{gcs.endpoint}/download/storage/v1/b/{quote(bucket, safe='')}/o/"
            f"{quote(key, safe='')}?alt=media")


def _call_error(exc: Any, facts: Any) -> LadenError | None:
    """A GoogleAPICallError: the service's answer, with its status."""
    if exc.code is None:
        return None  # no answer: a more general row words it
    return facts["wording"].error(int(exc.code), url=facts["url"], bucket=facts.get("bucket"),
                                  detail=f": {first_line(exc.message)}")


def _google_rows() -> Rows:
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    return {
        api.PreconditionFailed: Becomes(RemoteChanged, "{url} changed during the download"),
        api.GoogleAPICallError: _call_error,
        auth.RefreshError: Becomes(
            Permanent, "Google refused the credentials for {url}: {first_line}"),
        auth.DefaultCredentialsError: Becomes(
            InputError, "no usable Google credentials: {first_line}"),
        (auth.TransportError, requests.RequestException, OSError): Becomes(
            Retryable, "connection to GCS failed for {url}: {first_line}"),
        api.GoogleAPIError: Becomes(Permanent, "GCS error for {url}: {first_line}"),
    }


ERRORS = ErrorTable(_google_rows)
"""google-api-core's, google-auth's and requests' exceptions. Facts: `url`, `wording`
(`_WORDING`, or `_LISTING` for a listing, with its `bucket`)."""
