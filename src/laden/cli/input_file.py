"""`laden get -i FILE`: a list of URLs, one per line, or aria2's input-file form.

aria2's form puts options on indented lines after each URL (`  out=name`, `  dir=folder`,
`  checksum=sha-256=HEX`); tab-separated mirror URLs on one line are read as the first one.
"""

from __future__ import annotations

import os
from typing import Any

from ..engine.errors import InputError


def read_input_file(path: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        with (open(path, encoding="utf-8") if path != "-" else _stdin()) as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file") from None
    entries: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            if not entries:
                raise InputError(f"{path}, line {number}: an option line before any URL")
            entries[-1][1].update(_option(path, number, line.strip()))
        else:
            entries.append((line.split("\t")[0].strip(), {}))
    return entries


def _option(path: str, number: int, text: str) -> dict[str, Any]:
    key, found, value = text.partition("=")
    if not found:
        raise InputError(f"{path}, line {number}: expected name=value, not {text!r}")
    key, value = key.strip(), value.strip()
    if key == "out":
        return {"filename": value}
    if key == "dir":
        return {"dest": os.path.expanduser(value).rstrip(os.sep) + os.sep}
    if key == "checksum":
        algorithm, _, digest = value.partition("=")
        return {"checksum": f"{algorithm}:{digest}"}
    if key in ("split", "max-connection-per-server"):
        if not value.isdigit():
            raise InputError(f"{path}, line {number}: {key} must be a number")
        return {"connections": int(value)}
    if key == "header":
        name, _, header_value = value.partition(":")
        return {"headers": {name.strip(): header_value.strip()}}
    # Other aria2 options have no meaning here; ignoring them keeps existing lists usable.
    return {}


def _stdin() -> Any:
    import sys

    return sys.stdin
