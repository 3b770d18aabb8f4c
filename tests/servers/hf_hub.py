"""A small Hugging Face Hub on 127.0.0.1 that speaks what huggingface_hub uses to download.

Modelled on huggingface_hub 2.x (file_download.py, hf_api.py, utils/_http.py):
- ``GET /api/{models,datasets,spaces}/{repo}[/revision/{rev}][?blobs=true]``: repo info;
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=..``: paginated with ``Link: rel=next``;
- ``POST /api/{type}s/{repo}/paths-info/{rev}``: form ``paths=..&expand=..``;
- ``HEAD``/``GET /[datasets/|spaces/]{repo}/resolve/{rev}/{path}``: small files are served here
  (ETag = git blob sha1); LFS files answer 302 to a second server, the "CDN", with a signed,
  expiring query string, plus ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``.
Errors carry ``X-Error-Code`` (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound) as
``hf_raise_for_status`` expects. No Xet headers are ever sent, so clients use plain HTTP.
What uploads use (preupload, the LFS batch API, commits) is in ``hf_hub_uploads``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._httpd import QuietServer, RecordedRequest, RequestLog, serve_bytes
from .hf_hub_uploads import UploadEndpoints

TOKEN = "hf_laden_test_token_0123456789"
# /api/{plural}/... names the repo type; downloads use a prefix, except for models.
API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"datasets": "dataset", "spaces": "space"}


def git_blob_sha1(data: bytes) -> str:
    """The object id git gives a blob: sha1 over ``"blob <len>\\0"`` and the content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes, sha: str | None = None) -> bytes:
    """The pointer file git stores in place of an LFS file's content (`sha`: its sha256, when
    known already)."""
    sha = sha or hashlib.sha256(data).hexdigest()
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
    return text.encode()


def folder_entry(path: str) -> dict[str, Any]:
    # A real tree oid is the git tree's sha1; nothing downloads folders, so any stable id does.
    return {"type": "directory", "oid": git_blob_sha1(path.encode()), "path": path}


@dataclass(frozen=True)
class HubFile:
    path: str
    data: bytes
    lfs: bool

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property  # a large file's hash is asked for at every listing: once is enough
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def blob_id(self) -> str:
        # For an LFS file git stores the pointer, so the tree's oid is the pointer's sha1.
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @cached_property
    def pointer(self) -> bytes:
        return lfs_pointer(self.data, self.sha256)

    @property
    def etag(self) -> str:
        return f'"{self.sha256 if self.lfs else self.blob_id}"'

    def sibling(self, blobs: bool) -> dict[str, Any]:
        if not blobs:
            return {"rfilename": self.path}
        entry = {"rfilename": self.path, "size": self.size, "blobId": self.blob_id}
        if self.lfs:
            pointer_size = len(self.pointer)
            entry["lfs"] = {"sha256": self.sha256, "size": self.size, "pointerSize": pointer_size}
        return entry

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size}
        entry["path"] = self.path
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size,
                            "pointerSize": len(self.pointer)}
        return entry


@dataclass
class HubRepo:
    repo_id: str
    repo_type: str
    private: bool
    gated: bool
    lfs_threshold: int
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


class HubServer(UploadEndpoints):
    """The hub on ``endpoint`` and its CDN on ``cdn_endpoint``; state lives in memory. The
    CDN is also the storage uploads are PUT to (see `hf_hub_uploads`)."""

    token = TOKEN

    def __init__(self, *, page_size: int = 2, cdn_url_ttl: float = 3600.0) -> None:
        self.page_size = page_size
        self.cdn_url_ttl = cdn_url_ttl
        self.ignore_commits = False
        """Answer a resolve address with the branch's newest file, whatever commit it names
        (a broken hub, or a cache keyed on the path alone)."""
        self.ignore_if_range = False
        """Answer a Range with 206 even when If-Range names another version."""
        self.before_resolve: Callable[[RecordedRequest], None] | None = None
        """Called with each resolve request before it is answered (to change a file midway)."""
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.hub_requests = RequestLog()
        self.cdn_requests = RequestLog()
        self._blobs: dict[str, bytes] = {}  # sha256 -> LFS content, what the CDN serves
        self._parts: dict[str, dict[str, bytes]] = {}  # sha256 -> ETag -> a part uploaded
        self.commit_messages: list[str] = []
        """The summary of each commit made through the commit API, in order."""
        self._secret = secrets.token_bytes(16)
        self._lock = threading.RLock()  # a commit holds it while it adds files and moves the ref
        self._hub: QuietServer | None = None
        self._cdn: QuietServer | None = None
        self.endpoint = self.cdn_endpoint = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> HubServer:
        self._hub = QuietServer(self._handle_hub, self.hub_requests).start()
        self._cdn = QuietServer(self._handle_cdn, self.cdn_requests).start()
        self.endpoint, self.cdn_endpoint = self._hub.url, self._cdn.url
        return self

    def stop(self) -> None:
        for server in (self._hub, self._cdn):
            if server is not None:
                server.stop()
        self._hub = self._cdn = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- content -----------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "model",
        private: bool = False,
        gated: bool = False,
        lfs_threshold: int = 1024,
        revision_sha: str | None = None,
    ) -> str:
        """Create (or replace) a repo whose ``main`` holds ``files``; return the commit sha.

        Files of ``lfs_threshold`` bytes or more are LFS files, served through the CDN.
        """
        repo = HubRepo(repo_id, repo_type, private, gated, lfs_threshold)
        with self._lock:
            self.repos[(repo_type, repo_id)] = repo
        hub_files = {path: self._file(repo, path, data) for path, data in files.items()}
        return self._commit(repo, hub_files, revision_sha)

    def set_file(
        self, repo_id: str, path: str, data: bytes | None, *, repo_type: str = "model",
        lfs: bool | None = None, branch: str = "main",
    ) -> str:  # fmt: skip
        """Commit a new version of ``path`` (``None`` deletes it) on ``branch``; return its sha."""
        repo = self.repos[(repo_type, repo_id)]
        files = dict(repo.commits[repo.refs[branch]])
        if data is None:
            files.pop(path, None)
        else:
            files[path] = self._file(repo, path, data, lfs)
        return self._commit(repo, files, None, branch)

    def add_ref(self, repo_id: str, name: str, sha: str, *, repo_type: str = "model") -> None:
        """Point a branch or tag ``name`` at commit ``sha``."""
        with self._lock:
            self.repos[(repo_type, repo_id)].refs[name] = sha

    def _file(self, repo: HubRepo, path: str, data: bytes, lfs: bool | None = None) -> HubFile:
        file = HubFile(path, data, len(data) >= repo.lfs_threshold if lfs is None else lfs)
        if file.lfs:
            with self._lock:
                self._blobs[file.sha256] = data
        return file

    def _commit(
        self, repo: HubRepo, files: dict[str, HubFile], sha: str | None, branch: str = "main"
    ) -> str:
        sha = sha or secrets.token_hex(20)
        with self._lock:
            repo.commits[sha] = files
            repo.refs[branch] = sha
        return sha

    # -- hub ---------------------------------------------------------------------------------
    def _handle_hub(self, req: Any) -> None:
        url = urlsplit(req.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        try:
            if (parts[0] == "api" and len(parts) >= 3 and parts[1] in API_TYPES
                    and req.command == "POST" and ("preupload" in parts or "commit" in parts)):
                self._upload_api(req, API_TYPES[parts[1]], parts[2:])
            elif any(p.endswith(".git") for p in parts) and "lfs" in parts:
                kind = URL_PREFIXES.get(parts[0], "model")
                self._lfs(req, kind, parts[1:] if parts[0] in URL_PREFIXES else parts)
            elif parts[0] == "api" and len(parts) >= 3 and parts[1] in API_TYPES:
                self._api(req, API_TYPES[parts[1]], parts[2:], query)
            elif "resolve" in parts and parts[0] in URL_PREFIXES:
                self._resolve(req, URL_PREFIXES[parts[0]], parts[1:])
            elif "resolve" in parts:
                self._resolve(req, "model", parts)
            else:
                raise _HubError(404, None, "Not Found")
        except _HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            if error.commit:
                headers["X-Repo-Commit"] = error.commit
            body = json.dumps({"error": error.message}).encode()
            serve_bytes(req, body, status=error.status, headers=headers, ranges=False)

    def _find_repo(
        self, req: Any, repo_type: str, parts: list[str], marker: str
    ) -> tuple[HubRepo, list[str]]:
        """Split ``parts`` into a known repo id and the rest, and check the caller's access."""
        auth = req.headers.get("Authorization")
        authorized = auth == f"Bearer {self.token}"
        if auth is not None and not authorized:
            raise _HubError(401, None, "Invalid credentials in Authorization header")
        cut = parts.index(marker) if marker in parts else len(parts)
        repo = self.repos.get((repo_type, "/".join(parts[:cut])))
        if repo is None or (repo.private and not authorized):
            # The real hub answers 401 to anonymous callers for missing and private repos alike.
            raise _HubError(404 if authorized else 401, "RepoNotFound", "Repository not found")
        if repo.gated and not authorized:
            raise _HubError(401, "GatedRepo", f"Access to {repo.repo_id} is restricted.")
        return repo, parts[cut:]

    def _commit_for(self, repo: HubRepo, revision: str) -> tuple[str, dict[str, HubFile]]:
        sha = repo.resolve(revision)
        if sha is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha, repo.commits[sha]

    def _api(self, req: Any, kind: str, parts: list[str], query: dict[str, list[str]]) -> None:
        marker = next((m for m in ("revision", "tree", "paths-info") if m in parts), "")
        repo, rest = self._find_repo(req, kind, parts, marker)
        revision = rest[1] if len(rest) > 1 else "main"
        sha, files = self._commit_for(repo, revision)
        if marker == "tree":
            self._tree(req, repo, sha, files, "/".join(rest[2:]), query)
        elif marker == "paths-info":
            form = parse_qs(req.body.decode())
            entries = [e for p in form.get("paths", []) if (e := _entry(files, p)) is not None]
            serve_bytes(req, json.dumps(entries).encode(), ranges=False, json_body=True)
        else:
            # ?blobs=true (files_metadata=True) adds sizes, blob ids and LFS details.
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = [files[path].sibling(blobs) for path in sorted(files)]
            info = {"id": repo.repo_id, "_id": repo.repo_id, "sha": sha, "private": repo.private,
                    "gated": "auto" if repo.gated else False, "disabled": False,
                    "siblings": siblings, "lastModified": "2024-01-01T00:00:00.000Z"}  # fmt: skip
            serve_bytes(req, json.dumps(info).encode(), ranges=False, json_body=True)

    def _tree(self, req: Any, repo: HubRepo, sha: str, files: dict[str, HubFile], folder: str,
              query: dict[str, list[str]]) -> None:  # fmt: skip
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, dict[str, Any]] = {}
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            tail = path[len(prefix) :].split("/")
            # Folders on the way to the file: all of them when recursive, else only the first.
            for depth in range(1, len(tail) if recursive else min(len(tail), 2)):
                sub = prefix + "/".join(tail[:depth])
                entries[sub] = folder_entry(sub)
            if recursive or len(tail) == 1:
                entries[path] = files[path].tree_entry()
        if folder and not entries:
            raise _HubError(404, "EntryNotFound", f"{folder} does not exist", sha)
        ordered = [entries[k] for k in sorted(entries)]
        start = int(query.get("cursor", ["0"])[0])
        page = ordered[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(ordered):
            # Like the real hub: the next link is absolute and carries all query parameters.
            path = urlsplit(req.path).path
            nxt = f"{self.endpoint}{path}?recursive={str(recursive).lower()}&expand=false"
            headers["Link"] = f'<{nxt}&cursor={start + self.page_size}>; rel="next"'
        serve_bytes(req, json.dumps(page).encode(), headers=headers, ranges=False, json_body=True)

    def _resolve(self, req: Any, kind: str, parts: list[str]) -> None:
        if self.before_resolve is not None:
            headers = {name.lower(): value for name, value in req.headers.items()}
            self.before_resolve(RecordedRequest(req.command, req.path, headers))
        repo, rest = self._find_repo(req, kind, parts, "resolve")
        if len(rest) < 3:
            raise _HubError(404, None, "Not Found")
        sha, files = self._commit_for(repo, "main" if self.ignore_commits else rest[1])
        if self.ignore_if_range:
            del req.headers["If-Range"]
        file = files.get("/".join(rest[2:]))
        if file is None:
            raise _HubError(404, "EntryNotFound", "Entry not found", sha)
        headers = {"X-Repo-Commit": sha, "ETag": file.etag}
        if not file.lfs:
            serve_bytes(req, file.data, headers=headers)
            return
        expires = int(time.time() + self.cdn_url_ttl)
        name = quote(file.path.rsplit("/", 1)[-1])
        signature = self._sign(file.sha256, expires, name)
        headers.update({
            "X-Linked-Etag": file.etag, "X-Linked-Size": str(file.size),
            "Location": f"{self.cdn_endpoint}/lfs/{file.sha256}?name={name}"
                        f"&Expires={expires}&Signature={signature}",
        })  # fmt: skip
        serve_bytes(req, b"Found. Redirecting", status=302, headers=headers, ranges=False)

    # -- CDN ---------------------------------------------------------------------------------
    def _sign(self, sha256: str, expires: int, name: str) -> str:
        return hmac.new(self._secret, f"{sha256}:{expires}:{name}".encode(), "sha256").hexdigest()

    def _handle_cdn(self, req: Any) -> None:
        if req.command == "PUT":
            self._storage_put(req)
            return
        url = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        sha256 = url.path.rsplit("/", 1)[-1]
        expires = int(query["Expires"]) if query.get("Expires", "").isdigit() else 0
        expected = self._sign(sha256, expires, quote(query.get("name", "")))
        data = self._blobs.get(sha256)
        signed = hmac.compare_digest(expected, query.get("Signature", ""))
        if data is None or not signed or expires < time.time():
            # Like S3 behind CloudFront: a bad or expired signature is 403, never 401.
            serve_bytes(req, b"<Error><Code>AccessDenied</Code></Error>", status=403, ranges=False)
            return
        headers = {
            # A CDN's ETag is its storage's (an md5), not the hub's sha256: clients must not
            # compare the two.
            "ETag": f'"{hashlib.md5(data).hexdigest()}"',
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(query.get('name', ''))};"
            f' filename="{query.get("name", "")}";',
        }
        serve_bytes(req, data, headers=headers)


def _entry(files: dict[str, HubFile], path: str) -> dict[str, Any] | None:
    if path in files:
        return files[path].tree_entry()
    if any(p.startswith(path.rstrip("/") + "/") for p in files):
        return folder_entry(path)
    return None
