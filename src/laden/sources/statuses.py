"""What a status in an answer means, for every source: the one table from HTTP statuses (and
FTP reply codes) to laden's errors.

```
HTTP status               error       kind of retry (`core.retry.error_kind`)
429, 503                  SlowDown    slow-down: fewer connections, then again
408, 425, 500-999, none   Retryable   timeout (408) or server-error
any other                 Permanent   not tried again

FTP reply
421                       SlowDown    too many connections
4xx                       Retryable   server-error
5xx                       Permanent
```

The table decides the class; the words are each source's own (`Wording`): "GCS asks for fewer
requests (HTTP 503)", "HTTP 404 Not Found from host: no such file (/a.bin)". A service that
answers with error codes as well (S3's `SlowDown`, Azure's `ServerBusy`) names the status each
code stands for, so codes go through the same table. Foreign exceptions that carry no status
(timeouts, resets, an SDK's own errors) are translated by `foreign_errors`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import LadenError, Permanent, RemoteChanged, RemoteError, Retryable, SlowDown


@dataclass(frozen=True)
class StatusTable:
    """Statuses to the class of error each one means."""

    exact: Mapping[int, type[RemoteError]]
    """Statuses with a meaning of their own."""
    ranges: tuple[tuple[range, type[RemoteError]], ...]
    """Then ranges of statuses (5xx)."""
    otherwise: type[RemoteError]
    """Every other status."""
    unknown: type[RemoteError] = Retryable
    """No status at all: the answer never came whole."""

    def kind(self, status: int | None) -> type[RemoteError]:
        if status is None:
            return self.unknown
        exact = self.exact.get(status)
        if exact is not None:
            return exact
        for statuses, kind in self.ranges:
            if status in statuses:
                return kind
        return self.otherwise


HTTP_STATUSES = StatusTable(
    exact={429: SlowDown, 503: SlowDown, 408: Retryable, 425: Retryable},
    ranges=((range(500, 1000), Retryable),),
    otherwise=Permanent,
)
FTP_REPLIES = StatusTable(
    exact={421: SlowDown},
    ranges=((range(400, 500), Retryable),),
    otherwise=Permanent,
)


@dataclass(frozen=True)
class Wording:
    """How one source words the errors a status means; the class comes from `table`.

    Each line is a `str.format` template. The fields are those the source passes to `error`
    (`url`, `host`, ...) and always `status`, `code` (the service's error code, or "") and
    `said` (the code, else the status).
    """

    slow_down: str
    """SlowDown: the server asks for fewer requests."""
    server_error: str
    """Retryable: a server error or a timeout."""
    refused: str
    """Permanent, for a status without a line of its own."""
    statuses: Mapping[int, str] = field(default_factory=dict)
    """A status's own line (its class still the table's): 404 -> "no such GCS object: {url}"."""
    changed: Mapping[int, str] = field(default_factory=dict)
    """Statuses that mean the version a request was pinned to is gone (412, 416): these are
    RemoteChanged, whatever the table says."""
    codes: Mapping[str, int] = field(default_factory=dict)
    """A service's error codes and the status each stands for (S3's `SlowDown` is a 503)."""
    code_lines: Mapping[str, str] = field(default_factory=dict)
    """A code's own line (its class the table's for the status it stands for)."""
    table: StatusTable = HTTP_STATUSES

    def with_lines(self, *, statuses: Mapping[int, str] | None = None,
                   changed: Mapping[int, str] | None = None) -> Wording:
        """This wording with more lines: for reads pinned to a version, where more statuses
        mean "changed", or for a listing, where 404 names the bucket."""
        return dataclasses.replace(self, statuses={**self.statuses, **(statuses or {})},
                                   changed={**self.changed, **(changed or {})})

    def meaning(self, status: int | None, code: str = "") -> int | None:
        """The status an answer stands for: its code's, when the code is known."""
        return self.codes.get(code, status) if code else status

    def error(
        self, status: int | None, *, code: str = "", means: int | None = None,
        retry_after: float | None = None, **fields: Any,
    ) -> LadenError:
        """The error for an answer with `status` (and the service's `code`).

        Args:
            means: the status to classify by, when it is not `status` (an FTP reply too
                garbled to read as a number still says 4xx or 5xx).
            retry_after: the seconds the server asked for (SlowDown and Retryable keep it).
        """
        meant = means if means is not None else self.meaning(status, code)
        values = {"status": status, "code": code, "said": code or status, **fields}
        line = self.code_lines.get(code) if code else None
        if line is None and meant in self.changed:
            return RemoteChanged(self.changed[meant].format(**values).rstrip())
        kind = self.table.kind(meant)
        if line is None:
            line = self.statuses.get(meant) if meant is not None else None
        if line is None:
            line = (self.slow_down if issubclass(kind, SlowDown)
                    else self.server_error if issubclass(kind, Retryable) else self.refused)
        message = line.format(**values).rstrip()
        if issubclass(kind, Retryable):
            return kind(message, status=status, retry_after=retry_after)
        return kind(message, status=status)


class Later:
    """A field worked out only when a line uses it (an exception's text, which some SDK
    exceptions build from parts that may be missing)."""

    def __init__(self, work_out: Callable[[], object]) -> None:
        self._work_out = work_out

    def __format__(self, spec: str) -> str:
        return format(self._work_out(), spec)
