"""One line in laden.log for each request a source makes: method, address, range, answer, time.

A user debugging a failure reads what was asked and what came back. Logged at debug, once per
request (a probe, a range), never per read; when debug is off the only cost is a level check.
Addresses lose their `user:password@` here, and the log formatter removes signatures and
tokens (see `printable`); headers are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.urls import strip_credentials

log = logging.getLogger("laden.requests")

_REASON = 200
"""Characters of a failure's text a line keeps: the cause, not a dump."""


class Answer:
    """What the request got: set `status` (an HTTP status, or a protocol's reply) inside."""

    status: object = None


@contextmanager
def logged_request(method: str, url: str, start: int | None = None,
                   end: int | None = None) -> Iterator[Answer]:
    """Log the request made inside the block, with its answer or its failure.

    Args:
        method: GET, HEAD, RETR, or the SDK call's name.
        url: The address asked for (credentials are removed before logging).
        start: The first byte asked for, when a range was.
        end: The byte after the last one asked for (None: to the end of the file).
    """
    answer = Answer()
    if not log.isEnabledFor(logging.DEBUG):
        yield answer
        return
    began = time.monotonic()
    asked = "" if start is None else f" bytes {start}-{'' if end is None else end - 1}"
    try:
        yield answer
    except BaseException as exc:
        log.debug("%s %s%s failed after %.3f s: %s", method, strip_credentials(url), asked,
                  time.monotonic() - began, _reason(exc))
        raise
    log.debug("%s %s%s -> %s in %.3f s", method, strip_credentials(url), asked, answer.status,
              time.monotonic() - began)


def range_of(header: str | None) -> tuple[int | None, int | None]:
    """(start, end) from a `bytes=A-B` Range header, as `logged_request` takes them."""
    if not header or not header.startswith("bytes="):
        return None, None
    first, _, last = header[6:].partition("-")
    try:
        return int(first), (int(last) + 1 if last else None)
    except ValueError:
        return None, None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > _REASON:
        text = text[:_REASON] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
