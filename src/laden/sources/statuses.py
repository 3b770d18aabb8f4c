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

from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import LadenError, Permanent, RemoteChanged, RemoteError, Retryable, SlowDown

# Plain classes with slots, not dataclasses: the HTTP source imports this at every start, and
# a dataclass costs half a millisecond to define.


class StatusTable:
    """Statuses to the class of error each one means.

    Args:
        exact: statuses with a meaning of their own.
        ranges: then ranges of statuses (5xx).
        otherwise: every other status.
        unknown: no status at all (the answer never came whole).
    """

    __slots__ = ("exact", "ranges", "otherwise", "unknown")

    def __init__(self, exact: Mapping[int, type[RemoteError]],
                 ranges: tuple[tuple[range, type[RemoteError]], ...],
                 otherwise: type[RemoteError], unknown: type[RemoteError] = Retryable) -> None:
        self.exact = exact
        self.ranges = ranges
        self.otherwise = otherwise
        self.unknown = unknown

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


class Wording:
    """How one source words the errors a status means; the class comes from `table`.

    Each line is a `str.format` template. The fields are those the source passes to `error`
    (`url`, `host`, ...) and always `status`, `code` (the service's error code, or "") and
    `said` (the code, else the status).

    Args:
        slow_down: SlowDown: the server asks for fewer requests.
        server_error: Retryable: a server error or a timeout.
        refused: Permanent, for a status without a line of its own.
        statuses: a status's own line (its class still the table's): 404 -> "no such GCS
            object: {url}".
        changed: statuses that mean the version a request was pinned to is gone (412, 416):
            these are RemoteChanged, whatever the table says.
        codes: a service's error codes and the status each stands for (S3's `SlowDown` is a
            503). A known code decides over the answer's status.
        code_lines: a code's own line (its class the table's for the status it stands for).
        table: `HTTP_STATUSES` or `FTP_REPLIES`.
    """

    __slots__ = ("slow_down", "server_error", "refused", "statuses", "changed", "codes",
                 "code_lines", "table")

    def __init__(
        self, *, slow_down: str, server_error: str, refused: str,
        statuses: Mapping[int, str] | None = None, changed: Mapping[int, str] | None = None,
        codes: Mapping[str, int] | None = None, code_lines: Mapping[str, str] | None = None,
        table: StatusTable = HTTP_STATUSES,
    ) -> None:
        self.slow_down = slow_down
        self.server_error = server_error
        self.refused = refused
        self.statuses: Mapping[int, str] = statuses or {}
        self.changed: Mapping[int, str] = changed or {}
        self.codes: Mapping[str, int] = codes or {}
        self.code_lines: Mapping[str, str] = code_lines or {}
        self.table = table

    def with_lines(self, *, statuses: Mapping[int, str] | None = None,
                   changed: Mapping[int, str] | None = None) -> Wording:
        """This wording with more lines: for reads pinned to a version, where more statuses
        mean "changed", or for a listing, where 404 names the bucket."""
        return Wording(
            slow_down=self.slow_down, server_error=self.server_error, refused=self.refused,
            statuses={**self.statuses, **(statuses or {})},
            changed={**self.changed, **(changed or {})},
            codes=self.codes, code_lines=self.code_lines, table=self.table)

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
