"""What the test hub (`hf_hub.HubServer`) answers to huggingface_hub's commit API.

Modelled on huggingface_hub 2.x (`hf_api.create_commit` / `preupload_lfs_files`,
`_commit_api.py`, `lfs.py`) and the git-lfs batch API it speaks:
- ``POST /api/{type}s/{repo}/preupload/{rev}`` ``{"files": [{path, sample, size}]}``: each
  path's ``uploadMode`` ("lfs" from the repo's ``lfs_threshold`` up, or when the sample holds
  a NUL byte, the hub's sign of a binary file; else "regular") and the ``oid`` the path has at
  the revision (the sha256 of an LFS file, the git blob id of a small one);
- ``POST /[datasets/|spaces/]{repo}.git/info/lfs/objects/batch``: per object, no ``actions``
  when the hub holds it already, else an ``upload`` action (a signed, expiring PUT address on
  the storage server, the "CDN", which never sees the token) and a ``verify`` action on the
  hub; with ``multipart_chunk`` set, larger objects get the multipart form (``chunk_size`` and
  one signed PUT address per part in the header; ``href`` is the hub's completion address);
- ``PUT`` on the storage server: the object (or a part: answers an ``ETag``);
- ``POST /api/{type}s/{repo}/commit/{rev}``, ndjson: a ``header`` line (``summary``,
  ``parentCommit``: 412 "A commit has happened since" when the branch moved), ``file`` lines
  (base64 content) and ``lfsFile`` lines (an object the hub must hold); answers
  ``commitOid`` and ``commitUrl``.
Writing needs the token. What the hub verifies after a commit is read back with the download
side's ``paths-info``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ._httpd import serve_bytes

LFS_JSON = "application/vnd.git-lfs+json"


class UploadEndpoints:
    """The upload half of `HubServer` (a mixin: it shares the hub's repos, blobs and errors)."""

    multipart_chunk: int | None = None
    """Objects larger than this go in parts of this size (None: always one PUT)."""
    lose_commit_answers = 0
    """How many of the next commits are made but answered 500 (an answer lost on the way)."""

    def _writer(self, req: Any, kind: str, parts: list[str], marker: str) -> tuple[Any, list[str]]:
        from .hf_hub import _HubError

        if req.headers.get("Authorization") is None:
            raise _HubError(401, None, "You must be authenticated to write to this repository")
        return self._find_repo(req, kind, parts, marker)  # type: ignore[attr-defined]

    # -- the API: preupload and commit -------------------------------------------------------

    def _upload_api(self, req: Any, kind: str, parts: list[str]) -> None:
        marker = "preupload" if "preupload" in parts else "commit"
        repo, rest = self._writer(req, kind, parts, marker)
        revision = rest[1] if len(rest) > 1 else "main"
        if marker == "preupload":
            self._preupload(req, repo, revision)
        else:
            self._commit_ndjson(req, repo, revision)

    def _preupload(self, req: Any, repo: Any, revision: str) -> None:
        sha, files = self._commit_for(repo, revision)  # type: ignore[attr-defined]
        answer = []
        for item in json.loads(req.body)["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["size"] >= repo.lfs_threshold or b"\0" in sample
            there = files.get(item["path"])
            oid = None if there is None else (there.sha256 if there.lfs else there.blob_id)
            answer.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                           "shouldIgnore": False, "oid": oid})
        body = json.dumps({"files": answer, "commitOid": sha}).encode()
        serve_bytes(req, body, ranges=False, json_body=True)

    def _commit_ndjson(self, req: Any, repo: Any, revision: str) -> None:
        from .hf_hub import _HubError

        if revision not in repo.refs:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        with self._lock:  # type: ignore[attr-defined]
            head = repo.refs[revision]
            parent = header.get("parentCommit")
            if parent is not None and not head.startswith(parent):
                raise _HubError(412, None, "A commit has happened since. Please refresh and "
                                           "try again.")
            files = dict(repo.commits[head])
            for line in lines:
                value = line["value"]
                if line["key"] == "file":
                    data = base64.b64decode(value["content"])
                    if len(data) >= repo.lfs_threshold:
                        raise _HubError(400, None, "Your push was rejected because it contains "
                                                   "files larger than the limit; use LFS")
                    files[value["path"]] = self._file(repo, value["path"], data, False)  # type: ignore[attr-defined]
                elif line["key"] == "lfsFile":
                    data = self._blobs.get(value["oid"])  # type: ignore[attr-defined]
                    if data is None or len(data) != value.get("size", len(data)):
                        raise _HubError(400, None, "Your push was rejected because an LFS "
                                                   "pointer pointed to a file that does not "
                                                   "exist")
                    files[value["path"]] = self._file(repo, value["path"], data, True)  # type: ignore[attr-defined]
                elif line["key"] == "deletedFile":
                    files.pop(value["path"], None)
            self.commit_messages.append(header.get("summary", ""))  # type: ignore[attr-defined]
            # Under the same hold as reading the head, as the hub applies each commit on top
            # of the branch as it is: two commits at once must not both build on one head.
            sha = self._commit(repo, files, None, revision)  # type: ignore[attr-defined]
        if self.lose_commit_answers:
            self.lose_commit_answers -= 1
            raise _HubError(500, None, "Internal Error")
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.repo_type, "")
        body = json.dumps({"success": True, "commitOid": sha, "hookOutput": "",
                           "commitUrl": f"{self.endpoint}/{prefix}{repo.repo_id}/commit/{sha}"})  # type: ignore[attr-defined]
        serve_bytes(req, body.encode(), ranges=False, json_body=True)

    # -- the LFS batch API -------------------------------------------------------------------

    def _lfs(self, req: Any, kind: str, parts: list[str]) -> None:
        """``{repo}.git/info/lfs/objects/{batch,verify,complete/OID}``."""
        from .hf_hub import _HubError

        cut = next(i for i, p in enumerate(parts) if p.endswith(".git"))
        action = parts[cut + 4] if len(parts) > cut + 4 else ""
        if action == "complete":
            # huggingface_hub sends no token here: the address itself is signed.
            self._complete_parts(req, parts[cut + 5])
            return
        repo_parts = [*parts[:cut], parts[cut][:-4], "lfs"]
        repo, _rest = self._writer(req, kind, repo_parts, "lfs")
        if action == "batch":
            objects = [self._lfs_object(repo, o) for o in json.loads(req.body)["objects"]]
            body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})
            serve_bytes(req, body.encode(), ranges=False, headers={"Content-Type": LFS_JSON})
        elif action == "verify":
            wanted = json.loads(req.body)
            data = self._blobs.get(wanted["oid"])  # type: ignore[attr-defined]
            if data is None or len(data) != wanted["size"]:
                raise _HubError(404, None, "Object not found")
            serve_bytes(req, b"{}", ranges=False, json_body=True)
        else:
            raise _HubError(404, None, "Not Found")

    def _lfs_object(self, repo: Any, wanted: dict[str, Any]) -> dict[str, Any]:
        oid, size = wanted["oid"], wanted["size"]
        found = {"oid": oid, "size": size, "authenticated": True}
        if oid in self._blobs:  # type: ignore[attr-defined]
            return found  # held already: no action, nothing to send
        expires = int(time.time() + self.cdn_url_ttl)  # type: ignore[attr-defined]
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.repo_type, "")
        lfs_url = f"{self.endpoint}/{prefix}{repo.repo_id}.git/info/lfs/objects"  # type: ignore[attr-defined]
        verify = {"href": f"{lfs_url}/verify"}
        chunk = self.multipart_chunk
        if chunk is None or size <= chunk:
            found["actions"] = {"upload": {"href": self._put_url(oid, 0, expires),
                                           "expires_at": _iso(expires)}, "verify": verify}
            return found
        header = {"chunk_size": str(chunk)}
        for number in range(1, -(-size // chunk) + 1):
            header[str(number)] = self._put_url(oid, number, expires)
        complete = f"{lfs_url}/complete/{oid}?Expires={expires}&Signature=" + self._sign(  # type: ignore[attr-defined]
            oid, expires, "complete")
        found["actions"] = {"upload": {"href": complete, "header": header}, "verify": verify}
        return found

    def _put_url(self, oid: str, part: int, expires: int) -> str:
        name = f"{oid}.{part}"
        signature = self._sign(oid, expires, name)  # type: ignore[attr-defined]
        return (f"{self.cdn_endpoint}/upload/{oid}?part={part}&name={quote(name)}"  # type: ignore[attr-defined]
                f"&Expires={expires}&Signature={signature}")

    def _complete_parts(self, req: Any, oid: str) -> None:
        from .hf_hub import _HubError

        query = {k: v[0] for k, v in parse_qs(urlsplit(req.path).query).items()}
        expires = int(query["Expires"]) if query.get("Expires", "").isdigit() else 0
        if (self._sign(oid, expires, "complete") != query.get("Signature")  # type: ignore[attr-defined]
                or expires < time.time()):
            raise _HubError(403, None, "Invalid or expired signature")
        wanted = json.loads(req.body)
        with self._lock:  # type: ignore[attr-defined]
            held = self._parts.get(oid, {})  # type: ignore[attr-defined]
            try:
                data = b"".join(held[p["etag"]] for p in sorted(wanted["parts"],
                                                                  key=lambda p: p["partNumber"]))
            except KeyError:
                raise _HubError(400, None, "a part was not uploaded") from None
            self._parts.pop(oid, None)  # type: ignore[attr-defined]
            self._blobs[oid] = data  # type: ignore[attr-defined]
        serve_bytes(req, b"{}", ranges=False, json_body=True)

    # -- the storage server ------------------------------------------------------------------

    def _storage_put(self, req: Any) -> None:
        """A PUT to a signed upload address: the object, or one part of it."""
        url = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        oid = url.path.rsplit("/", 1)[-1]
        expires = int(query["Expires"]) if query.get("Expires", "").isdigit() else 0
        signed = self._sign(oid, expires, query.get("name", ""))  # type: ignore[attr-defined]
        if signed != query.get("Signature") or expires < time.time():
            serve_bytes(req, b"<Error><Code>AccessDenied</Code></Error>", status=403,
                        ranges=False)
            return
        data = req.body
        if len(data) != int(req.headers.get("Content-Length") or 0):
            return  # the client went away mid-body: S3 keeps nothing of such a PUT
        etag = hashlib.md5(data).hexdigest()
        with self._lock:  # type: ignore[attr-defined]
            if query.get("part", "0") == "0":
                # Like S3 behind a presigned PUT: stored as sent; the hub's verify and the
                # commit check its size, a client's own check after the commit its sha256.
                self._blobs[oid] = data  # type: ignore[attr-defined]
            else:
                self._parts.setdefault(oid, {})[f'"{etag}"'] = data  # type: ignore[attr-defined]
        serve_bytes(req, b"", headers={"ETag": f'"{etag}"'}, ranges=False)


def _iso(when: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
