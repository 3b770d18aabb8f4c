"""Turning the exceptions of the libraries a source uses (botocore, azure.core, google.api_core,
huggingface_hub, httpx, urllib3, ftplib) into laden's, one table per source.

The model is httpx's `map_httpcore_exceptions`: a mapping from foreign exception classes to
what each one becomes, loaded on first use (so the SDK is imported only when an error needs
it). Of the rows whose class an exception is an instance of, the most specific one decides (a
subclass's row before its base's, wherever each is listed); between unrelated classes (an
exception of two families, such as huggingface_hub's `LocalEntryNotFoundError`, both an
`EntryNotFoundError` and an `OSError`) the row listed first. A row is either
`Becomes(error class, line)` or a function for the cases that need more than a line (a status
inside the exception, a hint that depends on the options). A function may decline (return
None): the next row that matches decides then.

Lines are `str.format` templates over the facts a source passes (`url`, `host`, ...) and
`exc` (the exception's text), `text` (stripped) and `first_line` (its first line, or the
exception's class name when it has no text).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

from ..core.errors import LadenError


class Becomes:
    """A foreign exception becomes `error(line)`; `with_status`: with `status=` the table's
    `status_of(exc)` (for RemoteError classes).

    A plain class, not a dataclass: the HTTP source imports this at every start.
    """

    __slots__ = ("error", "line", "with_status")

    def __init__(self, error: type[LadenError], line: str, *, with_status: bool = False) -> None:
        self.error = error
        self.line = line
        self.with_status = with_status


Translate: TypeAlias = Callable[[Any, Mapping[str, Any]], BaseException | None]
"""(the exception, the facts) -> laden's error, or None to let a more general row decide."""
Row: TypeAlias = Becomes | Translate
Rows: TypeAlias = Mapping[type[BaseException] | tuple[type[BaseException], ...], Row]


class ErrorTable:
    """One source's foreign exceptions -> laden's errors.

    Args:
        load: builds the rows; called once, on the first error (it imports the SDK).
        status_of: the HTTP status an exception carries, for rows `with_status`.
    """

    def __init__(self, load: Callable[[], Rows],
                 status_of: Callable[[BaseException], int | None] | None = None) -> None:
        self._load = load
        self._status_of = status_of
        self._rows: dict[type[BaseException], Row] | None = None
        self._lock = threading.Lock()

    def rows(self) -> dict[type[BaseException], Row]:
        with self._lock:
            if self._rows is None:
                rows: dict[type[BaseException], Row] = {}
                for classes, row in self._load().items():
                    for cls in classes if isinstance(classes, tuple) else (classes,):
                        rows[cls] = row
                self._rows = rows
            return self._rows

    def translate(self, exc: BaseException, **facts: Any) -> BaseException:
        """laden's error for `exc`: `exc` itself when it is one already (or when no row
        matches it: a bug, left to show as one)."""
        if isinstance(exc, LadenError):
            return exc
        for row in self._matching(exc):
            error = self._apply(row, exc, facts)
            if error is not None:
                return error
        return exc

    @contextmanager
    def translating(self, **facts: Any) -> Iterator[None]:
        """Raise laden's error instead of any foreign one the block raises."""
        try:
            yield
        except Exception as exc:
            error = self.translate(exc, **facts)
            if error is exc:
                raise  # laden's already, or a bug: as it was raised
            raise error from None

    def _matching(self, exc: BaseException) -> list[Row]:
        """The rows for `exc` in the order they decide: a row whose class has no subclass
        among the other matching rows, the first listed of those; then the next."""
        matching = [(cls, row) for cls, row in self.rows().items() if isinstance(exc, cls)]
        ordered: list[Row] = []
        while matching:
            best = next(m for m in matching if not any(
                other is not m[0] and issubclass(other, m[0]) for other, _ in matching))
            ordered.append(best[1])
            matching.remove(best)
        return ordered

    def _apply(
        self, row: Row, exc: BaseException, facts: Mapping[str, Any]
    ) -> BaseException | None:
        if not isinstance(row, Becomes):
            return row(exc, facts)
        message = row.line.format_map(_Facts(facts, exc))
        if row.with_status:
            status = self._status_of(exc) if self._status_of is not None else None
            return row.error(message, status=status)  # type: ignore[call-arg]
        return row.error(message)


def first_line(value: object) -> str:
    """The first line of `value`'s text; its class name when it has none."""
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


class _Facts(dict[str, Any]):
    """The facts, and the exception's text, worked out only when a line asks for it."""

    def __init__(self, facts: Mapping[str, Any], exc: BaseException) -> None:
        super().__init__(facts)
        self._exc = exc

    def __missing__(self, name: str) -> str:
        if name == "exc":
            return str(self._exc)
        if name == "text":
            return str(self._exc).strip()
        if name == "first_line":
            return first_line(self._exc)
        raise KeyError(name)
