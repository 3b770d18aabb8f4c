"""Reading one mapping of a manifest field by field, collecting problems instead of stopping.

Every problem names where it is (`item 2 ('weights'), buckets[0].items[1]`) and which field, so
a manifest with three mistakes is fixed in one round, not three.
"""

from __future__ import annotations

import os
import re
import reprlib
from typing import Any

from ..core.checksums import parse_checksum
from ..core.errors import LadenError
from ..core.units import parse_rate
from ..sources.cloud import read_secret_file

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{where}: {message}" if where else message)


class Fields:
    """A mapping from the manifest at `where`; `known` lists the fields it may have."""

    def __init__(self, data: Any, where: str, problems: Problems, known: set[str]) -> None:
        self.where = where
        self.problems = problems
        self.ok = isinstance(data, dict)
        # Kaiwo's models also take camelCase aliases (targetPath, repoId): accept both.
        self.data: dict[str, Any] = (
            {_CAMEL.sub(r"_\1", str(k)).lower(): v for k, v in data.items()} if self.ok else {}
        )
        if not self.ok:
            problems.add(where, f"expected a mapping of fields, not {_kind(data)}")
            return
        unknown = sorted(set(self.data) - known)
        if unknown:
            names = ", ".join(shown(name).strip("'\"") for name in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            problems.add(where, f"unknown field{'s' * (len(unknown) > 1)} {names}{more} "
                         f"(known here: {', '.join(sorted(known))})")

    def problem(self, key: str, message: str) -> None:
        self.problems.add(f"{self.where}, field {key}" if self.where else f"field {key}", message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(key, f"expected text, not {_kind(value)}")
            return None
        text = str(value).strip()
        if required and not text:
            self.problem(key, "is empty")
            return None
        return text

    def value_or_file(self, key: str) -> str | None:
        """`key`, or `key_file` naming a file that holds it (a mounted Kubernetes secret), or
        Kaiwo's `key: {value: ...}` / `key: {file: ...}`."""
        value: Any = self.data.get(key)
        path: Any = self.data.get(f"{key}_file")
        if isinstance(value, dict):
            value, path = value.get("value"), path or value.get("file")
        if value is not None and path is not None:
            self.problem(key, f"give either {key} or {key}_file, not both")
            return None
        if path is not None:
            return self._read_secret(f"{key}_file", path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(key, f"expected text, not {_kind(value)}")
            return None
        return str(value).strip()

    def value_path(self, key: str) -> str | None:
        """The absolute path of the file `value_or_file(key)` read, if it read one."""
        value, path = self.data.get(key), self.data.get(f"{key}_file")
        if isinstance(value, dict):
            path = path or value.get("file")
        return os.path.abspath(os.path.expanduser(path)) if isinstance(path, str) else None

    def existing_file(self, key: str) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.isfile(path):
            # A FIFO or a device exists, but would hang or flood whoever reads it.
            why = "is not a regular file" if os.path.exists(path) else "does not exist"
            self.problem(key, f"{cut(value, PATH_SHOWN)} {why}")
            return None
        return path

    def whole_number(self, key: str, low: int, high: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"must be a whole number from {low} to {high}, not {shown(value)}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {shown(value)}")
            return None
        return value

    def rate(self, key: str) -> int | None:
        value = self.data.get(key)
        try:
            return None if value is None else parse_rate(value)
        except LadenError as exc:
            self.problem(key, str(exc))
            return None

    def checksum(self, key: str = "checksum") -> str | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            parse_checksum(value)
        except LadenError as exc:
            self.problem(key, str(exc))
            return None
        return value

    def choice(self, key: str, choices: tuple[str, ...], aliases: dict[Any, str]) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and value in aliases:
            return aliases[value]
        if not isinstance(value, str) or value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, not {shown(value)}")
            return None
        return str(value)

    def list(self, key: str, *, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "is missing")
            return []
        if not isinstance(value, list):
            self.problem(key, f"expected a list, not {_kind(value)}")
            return []
        return value

    def mapping(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.problem(key, f"expected a mapping of names to text, not {_kind(value)}")
            return {}
        return {str(k): v for k, v in value.items()}

    def _read_secret(self, key: str, path: Any) -> str | None:
        if not isinstance(path, str) or not path.strip():
            self.problem(key, f"expected a file path, not {_kind(path)}")
            return None
        if not os.path.lexists(os.path.expanduser(path.strip())):
            self.problem(key, f"{cut(path.strip(), PATH_SHOWN)} does not exist")
            return None
        try:
            # The sources' reader: bounded, never waits on a FIFO, refuses a device.
            return read_secret_file(path.strip(), key.removesuffix("_file"))
        except LadenError as exc:
            self.problem(key, str(exc))
        return None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40
_SHOWN = 60
PATH_SHOWN = 200
"""Paths are longer than other values, and their end is what tells them apart."""


def shown(value: Any) -> str:
    """`value` as a problem repeats it: quoted like repr(), cut to its first characters, so a
    megabyte of text or a huge list in a manifest never becomes a megabyte of message."""
    if isinstance(value, str):
        return repr(cut(value))
    try:
        text = _REPR.repr(value)
    except ValueError:  # repr() of an int of thousands of digits
        text = f"a {type(value).__name__}"
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def cut(text: str, limit: int = _SHOWN) -> str:
    """`text` as a problem repeats it unquoted (a path): its first `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__)
