"""Fault switches and request records for the test file server (see http_server.py).

Kept apart from the server so engine tests can import the plain data types without
pulling in the socket machinery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Misbehaviours of one served file. All off by default.

    The object is stored as given (not copied), so a test may flip attributes while a
    download runs; `status_sequence` is consumed in place. The per-file counters that the
    `*_times` / `*_requests` / every-other switches rely on start at zero when the file is
    added and again on every `FileServer.set_faults`.

    Counting rules, so tests can predict which request is hit:
    - "requests" (`full_body_after_requests`, `expire_after_requests`) counts every GET and
      HEAD for the file, including ones answered from `status_sequence` or with 403.
    - `drop_every_other` counts GETs only (a HEAD has no body to drop): GET 1, 3, 5... drop.
    - A drop or stall only "happens" (and only counts towards `drop_times` /
      `stall_times`) when the response body is longer than `drop_after` / `stall_after`.
    """

    # Answer 200 with the full body to ranged requests (and never advertise Accept-Ranges).
    ignore_range: bool = False
    # Close the connection after sending N body bytes ...
    drop_after: int | None = None
    # ... but only on every other GET (1st, 3rd, ...) when True.
    drop_every_other: bool = False
    # Apply drop_after at most this many times in total (None = always).
    drop_times: int | None = None
    # Each request pops the next (status, headers) and gets a short text body instead of
    # the file, e.g. [(503, {"Retry-After": "1"}), (429, {"Retry-After": "<HTTP date>"})].
    status_sequence: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # Bytes per second cap for each response body (sleep-paced, chunks of <= 16 KiB).
    rate_per_connection: int | None = None
    # Close-delimited body: no Content-Length, "Connection: close".
    no_content_length: bool = False
    # Transfer-Encoding: chunked (takes precedence over no_content_length).
    chunked: bool = False
    # Content-Encoding: gzip on every response, even ranged ones: the body is the gzip of
    # the bytes that would otherwise be sent; Content-Range keeps uncompressed offsets.
    gzip: bool = False
    # After N body bytes, send nothing for stall_seconds (then continue).
    stall_after: int | None = None
    stall_seconds: float = 0.0
    # Apply the stall at most this many times (None = always).
    stall_times: int | None = None
    # 206 whose Content-Range start is off by +1 (the body still starts at the asked start).
    wrong_content_range: bool = False
    # Send N bytes more than asked in a 206; Content-Length matches the larger body
    # (zero bytes pad it when the range already reaches the end of the file).
    extra_bytes: int = 0
    # Send N bytes fewer than Content-Length says, then close.
    short_bytes: int = 0
    # A new ETag on every response, content unchanged (tokenized CDN). If-Range / If-Match
    # with an earlier ETag therefore never match.
    change_etag_every_request: bool = False
    # Answer 403 when more than N requests for this file are in flight at once.
    max_connections: int | None = None
    # After N requests, answer ranged requests with 200 + the full body.
    full_body_after_requests: int | None = None
    # 405 to HEAD.
    head_not_allowed: bool = False
    # Send neither ETag nor Last-Modified.
    no_etag: bool = False
    # After N requests answer 403 (an expired signed URL).
    expire_after_requests: int | None = None
    # A new ETag and a Last-Modified one second later on every response, content unchanged: a
    # file rewritten all the time, whose every change is real (not a tokenized link).
    change_every_request: bool = False


@dataclass(frozen=True)
class RequestRecord:
    """One answered request, as logged in `FileServer.requests`."""

    method: str
    path: str  # the request target as sent, query string included
    headers: dict[str, str]  # lower-case names
    status: int
    range: str | None  # the Range header as sent, if any
    client_port: int
    at: float = field(default_factory=time.monotonic)
    """When the request was answered (time.monotonic()): the gaps between retries."""
