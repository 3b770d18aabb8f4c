"""The Hugging Face Hub: files, folders and whole repositories at a revision.

Addresses: `hf://owner/repo/path/in/repo`, `hf://datasets/owner/repo/...`,
`hf://spaces/owner/repo/...`, with a revision as `hf://owner/repo@REV/path` (a revision with
`/`, such as `refs/pr/1`, percent-encoded) or the `revision` setting; the default is `main`.
`hf://owner/repo` alone is the whole repository (a snapshot, narrowed by `include` and
`exclude` globs); a path ending in `/` or holding a glob is a folder.

The metadata comes from huggingface_hub: a HEAD on the file's resolve address gives the commit
the revision points to, the ETag (the LFS sha256, or the git blob sha1 of a small file), the
size, and for LFS files the signed CDN address the hub redirects to. Those checksums are
verified without asking. The bytes are plain HTTP, so the HTTP source reads them: small files
from the resolve address pinned to that commit, LFS files from the CDN. The token goes only to
the hub: the HTTP source sends credentials to the same origin only, never to the CDN. When a
signed CDN address expires, the engine probes again for a fresh one of the same version.

Token, first found: `hf_token` (secrets), the file `hf_token_file` names, then the hub's own
(`HF_TOKEN`, the saved login). The endpoint: `hf_endpoint`, then `HF_ENDPOINT`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ..core.config import Config
from ..core.errors import InputError, LadenError, Permanent, Retryable
from ..core.known_sources import known_source
from ..core.options import DownloadOptions
from ..core.snapshots import ChecksumInfo
from . import cloud, listing, versions
from .base import ListedObject, RangeReader, RemoteInfo, Source
from .foreign_errors import Becomes, ErrorTable, Rows
from .requests_log import logged_request
from .statuses import Wording

DEFAULT_ENDPOINT = "https://huggingface.co"
_TYPES = {"datasets": "dataset", "spaces": "space"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_UNKNOWN = object()


@dataclass(frozen=True)
class HubAddress:
    repo_type: str
    """model, dataset or space."""
    repo_id: str
    revision: str | None
    """As written after `@` in the address; None when it names none."""
    path: str

    def url_for(self, path: str) -> str:
        kind = {"dataset": "datasets/", "space": "spaces/"}.get(self.repo_type, "")
        revision = f"@{quote(self.revision, safe='')}" if self.revision else ""
        return f"hf://{kind}{self.repo_id}{revision}/{quote(path, safe=cloud.KEY_SAFE)}"


@dataclass(frozen=True)
class HubCall:
    """A client for one address: the hub's API (holding the token), the address, the revision
    it names (or the `revision` setting, or main), and the facts `ERRORS` words errors with."""

    api: Any
    address: HubAddress
    revision: str
    facts: dict[str, Any]


def parse_address(url: str) -> HubAddress:
    parts = url.split("://", 1)[1].split("/")
    repo_type = "model"
    if parts[0] in _TYPES:
        repo_type = _TYPES[parts.pop(0)]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InputError(f"{url}: a Hugging Face address names owner/repo, as in "
                         "hf://owner/repo/file or hf://datasets/owner/repo")
    name, _, revision = parts[1].partition("@")
    return HubAddress(repo_type, f"{parts[0]}/{name}", unquote(revision) or None,
                      unquote("/".join(parts[2:])))


class HfSource(Source):
    known = known_source("hf")
    SUPPORTS_LISTING = True

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._http_source: Any = None
        self._hub_token: object = _UNKNOWN

    def _http(self) -> Any:
        if self._http_source is None:
            from .http import HttpSource

            self._http_source = HttpSource(self._config)
        return self._http_source

    # -- the probe ---------------------------------------------------------------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        address = parse_address(url)
        if not address.path or address.path.endswith("/"):
            raise InputError(f"{url} names a folder, not a file (laden get expands folders)")
        endpoint = self._endpoint(options)
        token = self._token(options)
        revision = self._revision(address, options)
        with ERRORS.translating(**_facts(url, address, revision, token)), \
                logged_request("HEAD", url) as answer:
            meta = get_hf_file_metadata(
                hf_hub_url(address.repo_id, address.path, repo_type=address.repo_type,
                           revision=revision, endpoint=endpoint),
                token=token or False, timeout=self._config.connect_timeout,
                endpoint=endpoint,
            )
            answer.status = f"{meta.size} bytes at commit {meta.commit_hash}"
        commit = meta.commit_hash or revision
        pinned = hf_hub_url(address.repo_id, address.path, repo_type=address.repo_type,
                            revision=commit, endpoint=endpoint)
        etag = (meta.etag or "").lower()
        checksums = []
        if _SHA256.fullmatch(etag):
            checksums.append(ChecksumInfo("sha256", etag, "Hugging Face LFS sha256"))
        elif _SHA1.fullmatch(etag):
            checksums.append(ChecksumInfo("git-sha1", etag, "Hugging Face git blob sha1"))
        # A small file is served by the hub itself: read it from the commit, not the branch.
        redirected = meta.location and not meta.location.startswith(endpoint.rstrip("/") + "/")
        return RemoteInfo(
            url=url,
            final_url=meta.location if redirected else pinned,
            size=meta.size,
            supports_ranges=meta.size is not None,
            etag=meta.etag,
            filename=cloud.file_name(address.path),
            checksums=tuple(checksums),
            # The file's content id: a new commit that leaves the file alone resumes it.
            version=meta.etag,
            extra={"commit": commit, "resolve_url": pinned},
        )

    # -- the bytes ---------------------------------------------------------------------------

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        # The HTTP source sends the token only when the address it reads is on the same origin
        # as `url` (the hub), so a CDN never sees it. Both addresses name content that should
        # not change (a commit, a content hash), but a hub or cache may not honour the commit:
        # the hub's answers carry the pinned ETag, so the HTTP source pins and checks it. A
        # CDN's ETag is its storage's own (not the hub's sha256), so there only the size and
        # the address's content hash hold, and the published sha256 is checked at the end.
        url = remote.extra.get("resolve_url") or remote.final_url
        tag = _quoted(remote.etag) if remote.final_url == url else None
        web = RemoteInfo(
            url=url,
            final_url=remote.final_url,
            size=remote.size,
            supports_ranges=remote.supports_ranges,
            etag=tag,
            version=tag,
        )
        token = self._token(options)
        web_options = dataclasses.replace(
            options, bearer_token=token, username=None, password=None, netrc=False)
        return self._http().open_range(web, start, end, web_options)

    # -- folders and snapshots ---------------------------------------------------------------

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        return listing.is_folder_key(parse_address(url).path, options)

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile

        address = parse_address(url)
        chosen = listing.selection(address.path, options)
        token = self._token(options)
        revision = self._revision(address, options)
        api = HfApi(endpoint=self._endpoint(options), token=token or False)
        folder = chosen.prefix.rstrip("/") or None
        with ERRORS.translating(**_facts(url, address, revision, token)):
            # The tree is read at one commit, so its pages cannot come from two.
            commit = api.repo_info(address.repo_id, repo_type=address.repo_type,
                                   revision=revision).sha or revision
            entries = api.list_repo_tree(address.repo_id, path_in_repo=folder, recursive=True,
                                         revision=commit, repo_type=address.repo_type)
            items = [(e.path, e.size) for e in entries if isinstance(e, RepoFile)]
        return listing.expand(url, items, chosen, address.url_for)

    # -- what uploads share -----------------------------------------------------------------

    def hub(self, url: str, options: DownloadOptions) -> HubCall:
        """What a call to the hub about `url` needs (the upload side asks this)."""
        from huggingface_hub import HfApi

        address = parse_address(url)
        token = self._token(options)
        revision = self._revision(address, options)
        return HubCall(HfApi(endpoint=self._endpoint(options), token=token or False), address,
                       revision, _facts(url, address, revision, token))

    # -- settings ----------------------------------------------------------------------------

    def _endpoint(self, options: DownloadOptions) -> str:
        endpoint = cloud.setting(options, self._config, "hf_endpoint") or os.environ.get(
            "HF_ENDPOINT") or DEFAULT_ENDPOINT
        return str(endpoint).rstrip("/")

    def _token(self, options: DownloadOptions) -> str | None:
        if cloud.flag(options, self._config, "anonymous"):
            return None
        token = cloud.secret(options, self._config, "hf_token")
        if token:
            return token
        if self._hub_token is _UNKNOWN:
            from huggingface_hub import get_token

            self._hub_token = get_token()  # HF_TOKEN or the saved login, looked up once
        return self._hub_token  # type: ignore[return-value]

    def _revision(self, address: HubAddress, options: DownloadOptions) -> str:
        return address.revision or str(
            cloud.setting(options, self._config, "revision") or "main")

    def close(self) -> None:
        if self._http_source is not None:
            self._http_source.close()


def _quoted(etag: str | None) -> str | None:
    """The ETag as the hub sends it: huggingface_hub keeps it without quotes or `W/`."""
    tag = versions.opaque_tag(etag)
    return f'"{tag}"' if tag else None


_WORDING = Wording(
    slow_down="the Hugging Face Hub asks for fewer requests",
    server_error="Hugging Face Hub error {status} for {url}",
    refused="the Hugging Face Hub refused {url} (HTTP {status})",
    statuses={401: "the Hugging Face Hub refused the token for {url}",
              403: "the Hugging Face Hub denies access to {url}"},
)


def _facts(url: str, address: HubAddress, revision: str, token: str | None) -> dict[str, Any]:
    repo = f"{address.repo_type} {address.repo_id}" if address.repo_type != "model" else (
        address.repo_id)
    return {"url": url, "repo": repo, "revision": revision, "token": bool(token),
            "path": address.path}


def _status(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def _repository_not_found(exc: Any, facts: Any) -> LadenError:
    if facts["token"]:
        return Permanent(f"Hugging Face repository {facts['repo']} not found, or the token "
                         "cannot read it", status=_status(exc))
    return Permanent(f"Hugging Face repository {facts['repo']} not found; if it is private or "
                     "gated, give a token (HF_TOKEN or --hf-token-file)", status=_status(exc))


def _answer_error(exc: Any, facts: Any) -> LadenError | None:
    status = _status(exc)
    if status is None:
        return None  # no answer: the connection failed
    return _WORDING.error(status, url=facts["url"])


def _hub_rows() -> Rows:
    from huggingface_hub import errors

    missing = tuple(getattr(errors, name) for name in ("EntryNotFoundError",
                                                       "RemoteEntryNotFoundError")
                    if hasattr(errors, name))
    transport = getattr(errors, "HTTPError", OSError)  # httpx's base class in huggingface_hub
    return {
        errors.GatedRepoError: Becomes(
            Permanent, "Hugging Face repository {repo} is gated: accept its conditions on the "
                       "Hub, then use a token (HF_TOKEN or --hf-token-file)", with_status=True),
        errors.RepositoryNotFoundError: _repository_not_found,
        errors.RevisionNotFoundError: Becomes(
            Permanent, "Hugging Face repository {repo} has no revision {revision!r}",
            with_status=True),
        missing: Becomes(Permanent, "no file {path!r} in Hugging Face repository {repo} at "
                                    "{revision}", with_status=True),
        errors.HfHubHTTPError: _answer_error,
        errors.OfflineModeIsEnabled: Becomes(
            Permanent, "cannot fetch {url}: HF_HUB_OFFLINE is set"),
        (transport, OSError): Becomes(
            Retryable, "connection to the Hugging Face Hub failed for {url}: {exc}"),
    }


ERRORS = ErrorTable(_hub_rows, status_of=_status)
"""huggingface_hub's exceptions. Facts: those of `_facts`."""
