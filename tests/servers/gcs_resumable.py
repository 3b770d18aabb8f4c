"""A GCS JSON API server for resumable uploads, following Google's documented protocol.

fake-gcs-server cannot prove a resume: asked for a session's offset (an empty PUT with
`Content-Range: bytes */SIZE`) it finalises the object, and the `Range` it reports is off by
one. This small server does what Google's "Perform resumable uploads" page says, and nothing
else of the API:

- `POST /upload/storage/v1/b/BUCKET/o?uploadType=resumable&name=NAME[&ifGenerationMatch=0]`
  opens a session: 200 with its URI in `Location`, on the host the client asked (its `Host`
  header), as Google's is: a client reaching the server through a relay stays on it.
- `PUT SESSION` with `Content-Range: bytes A-B/TOTAL` (TOTAL `*` until the last chunk) appends
  a chunk starting exactly at the persisted offset; a chunk that is not the last must be a
  multiple of 256 KiB. 308 with `Range: bytes=0-N` (none while nothing is persisted); the chunk
  that reaches TOTAL finalises the object: 200 with its metadata, or 412 when
  `ifGenerationMatch=0` was asked and the name is taken by then, or 400 when `X-Goog-Hash`
  (crc32c, md5) differs from the bytes.
- `PUT SESSION` with `Content-Range: bytes */TOTAL` and no body asks for the offset: 308 as
  above, or 200 once finalised. It never finalises anything.
- An unknown (expired, cancelled) session: 404. `DELETE SESSION` cancels it: 499.
- `POST /token`, as Google's OAuth token endpoint answers a revoked refresh token: 400
  `invalid_grant` (credentials the service refuses).
- `POST ...?uploadType=multipart` (one request, its metadata's crc32c and md5Hash checked) and
  `GET /storage/v1/b/BUCKET/o/NAME` (the object's size, crc32c, md5Hash).

A chunk whose body arrives short (the client died mid-request) persists nothing, which is what
the protocol allows; `keep_short_once` makes the next chunk persist 256 KiB less than was sent,
which Google allows too; `fail_next_chunks` answers chunks 503, as a busy service does;
`keep_then_fail_once` persists the next chunk that is not the last and answers it 503 all the
same (the answer lost on its way, as a client sees a reply that timed out); `forbidden` answers
every request 403 while it is set, as Google does once the caller may no longer write the
bucket (its key revoked, its role taken away, the project's billing disabled); the sessions
keep what they held.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c

from ._httpd import QuietServer, RequestLog
from ._proc import Emulator

QUANTUM = 256 * 1024
_CHUNK = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_QUERY = re.compile(r"^bytes \*/(\d+|\*)$")


@dataclass
class Session:
    bucket: str
    name: str
    only_new: bool
    data: bytearray = field(default_factory=bytearray)
    finished: bool = False


@dataclass
class Stored:
    data: bytes
    generation: int

    def metadata(self, bucket: str, name: str) -> dict[str, Any]:
        crc = google_crc32c.value(self.data).to_bytes(4, "big")
        return {"kind": "storage#object", "bucket": bucket, "name": name,
                "size": str(len(self.data)), "generation": str(self.generation),
                "crc32c": base64.b64encode(crc).decode(),
                "md5Hash": base64.b64encode(hashlib.md5(self.data).digest()).decode()}


class GcsResumableServer(Emulator):
    def __init__(self) -> None:
        self.requests = RequestLog()
        self.objects: dict[tuple[str, str], Stored] = {}
        self.sessions: dict[str, Session] = {}
        self.chunks: list[tuple[int, int]] = []
        """(first byte, byte after the last) of each chunk persisted, in order."""
        self.keep_short_once = False
        self.fail_next_chunks = 0
        """Answer this many of the next chunks 503, keeping none of their bytes."""
        self.keep_then_fail_once = False
        self.forbidden = False
        """Answer every request 403 Forbidden, keeping nothing of it."""
        self._lock = threading.Lock()
        self._generation = 1
        self._server: QuietServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> GcsResumableServer:
        self._server = QuietServer(self._handle, self.requests).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- for tests ---------------------------------------------------------------------------

    def object(self, bucket: str, name: str) -> bytes | None:
        with self._lock:
            stored = self.objects.get((bucket, name))
            return None if stored is None else stored.data

    def put_object(self, bucket: str, name: str, data: bytes) -> None:
        with self._lock:
            self._generation += 1
            self.objects[(bucket, name)] = Stored(data, self._generation)

    def persisted(self) -> int:
        """Bytes held by the one unfinished session (0 when there is none)."""
        with self._lock:
            open_ = [s for s in self.sessions.values() if not s.finished]
            return len(open_[0].data) if open_ else 0

    def lose_confirmed_bytes(self) -> None:
        """The open session forgets the bytes it confirmed, and the next chunk is answered
        503: a service going back on its word, which a client must not continue."""
        with self._lock:
            for session in self.sessions.values():
                if not session.finished:
                    session.data.clear()
            self.fail_next_chunks = 1

    def forget_sessions(self) -> None:
        """As a week passing: every session expires."""
        with self._lock:
            self.sessions.clear()

    # -- the protocol ------------------------------------------------------------------------

    def _handle(self, handler: Any) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        with self._lock:
            if handler.command == "POST" and path == "/token":
                return _send(handler, 400, {"error": "invalid_grant",
                                            "error_description": "Token has been expired or "
                                                                 "revoked."})
            if self.forbidden:
                return _send(handler, 403, {"error": {"code": 403, "message": (
                    "The caller does not have storage.objects.create access to the bucket.")}})
            if handler.command == "POST" and path.startswith("/upload/storage/v1/b/"):
                bucket = unquote(path.split("/")[5])
                if query.get("uploadType") == "resumable":
                    return self._open(handler, bucket, query)
                if query.get("uploadType") == "multipart":
                    return self._multipart(handler, bucket, query)
            if path.startswith("/upload/") and "upload_id" in query:
                session = self.sessions.get(query["upload_id"])
                if session is None:
                    return _send(handler, 404, {"error": {"message": "No such upload"}})
                if handler.command == "DELETE":
                    del self.sessions[query["upload_id"]]
                    return _send(handler, 499, {})
                if handler.command == "PUT":
                    return self._put(handler, session)
            if handler.command == "GET" and path.startswith("/storage/v1/b/"):
                pieces = path.split("/")
                bucket, name = unquote(pieces[4]), unquote("/".join(pieces[6:]))
                stored = self.objects.get((bucket, name))
                if stored is None:
                    return _send(handler, 404, {"error": {"message": "No such object"}})
                return _send(handler, 200, stored.metadata(bucket, name))
        return _send(handler, 400, {"error": {"message": "not part of this server"}})

    def _open(self, handler: Any, bucket: str, query: dict[str, str]) -> None:
        name = query.get("name") or json.loads(handler.body or b"{}").get("name")
        token = secrets.token_urlsafe(24)
        self.sessions[token] = Session(bucket, name, query.get("ifGenerationMatch") == "0")
        host = handler.headers.get("Host") or self.endpoint.split("://", 1)[1]
        location = (f"http://{host}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
                    f"&upload_id={token}")
        _send(handler, 200, {}, {"Location": location})

    def _put(self, handler: Any, session: Session) -> None:
        asked = handler.headers.get("Content-Range", "")
        if session.finished:
            stored = self.objects[(session.bucket, session.name)]
            return _send(handler, 200, stored.metadata(session.bucket, session.name))
        if _QUERY.match(asked) and not handler.body:
            return self._held(handler, session)
        if self.fail_next_chunks and not _QUERY.match(asked):
            self.fail_next_chunks -= 1
            return _send(handler, 503, {"error": {"message": "Backend Error"}})
        match = _CHUNK.match(asked)
        length = int(handler.headers.get("Content-Length") or 0)
        if match is None or len(handler.body) != length:
            return _send(handler, 400, {"error": {"message": "bad Content-Range or body"}})
        start, last, total = int(match[1]), int(match[2]), match[3]
        body = handler.body
        if start != len(session.data) or last - start + 1 != len(body):
            return _send(handler, 400, {"error": {"message": "not at the persisted offset"}})
        final = total != "*" and last + 1 == int(total)
        if not final and len(body) % QUANTUM:
            return _send(handler, 400, {"error": {"message": "not a multiple of 256 KiB"}})
        if not final and self.keep_short_once and len(body) > QUANTUM:
            self.keep_short_once = False
            body = body[:-QUANTUM]
        session.data += body
        self.chunks.append((start, start + len(body)))
        if not final and self.keep_then_fail_once:
            self.keep_then_fail_once = False
            return _send(handler, 503, {"error": {"message": "Backend Error"}})
        if not final:
            return self._held(handler, session)
        data = bytes(session.data)
        problem = _hash_problem(handler.headers.get("X-Goog-Hash", ""), data)
        if problem:
            return _send(handler, 400, {"error": {"message": problem}})
        if session.only_new and (session.bucket, session.name) in self.objects:
            return _send(handler, 412, {"error": {"message": "conditionNotMet"}})
        session.finished = True
        self._generation += 1
        stored = self.objects[(session.bucket, session.name)] = Stored(data, self._generation)
        _send(handler, 200, stored.metadata(session.bucket, session.name))

    def _held(self, handler: Any, session: Session) -> None:
        held = len(session.data)
        _send(handler, 308, None, {"Range": f"bytes=0-{held - 1}"} if held else {})

    def _multipart(self, handler: Any, bucket: str, query: dict[str, str]) -> None:
        boundary = handler.headers.get("Content-Type", "").split("boundary=")[-1].encode()
        pieces = handler.body.split(b"--" + boundary)
        metadata = json.loads(pieces[1].split(b"\r\n\r\n", 1)[1].strip())
        data = pieces[2].split(b"\r\n\r\n", 1)[1][:-2]  # less the CRLF before the boundary
        stored = Stored(data, 0)
        facts = stored.metadata(bucket, metadata["name"])
        for key in ("crc32c", "md5Hash"):
            if metadata.get(key) and metadata[key] != facts[key]:
                return _send(handler, 400, {"error": {"message": f"{key} does not match"}})
        if query.get("ifGenerationMatch") == "0" and (bucket, metadata["name"]) in self.objects:
            return _send(handler, 412, {"error": {"message": "conditionNotMet"}})
        self._generation += 1
        stored.generation = self._generation
        self.objects[(bucket, metadata["name"])] = stored
        _send(handler, 200, stored.metadata(bucket, metadata["name"]))


def _hash_problem(header: str, data: bytes) -> str | None:
    given = dict(item.strip().split("=", 1) for item in header.split(",") if "=" in item)
    facts = Stored(data, 0).metadata("", "")
    for key, fact in (("crc32c", "crc32c"), ("md5", "md5Hash")):
        if key in given and given[key] != facts[fact]:
            return f"Provided {key} does not match the object's"
    return None


def _send(handler: Any, status: int, body: dict[str, Any] | None,
          headers: dict[str, str] | None = None) -> None:
    payload = b"" if body is None else json.dumps(body).encode()
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if body is not None:
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
