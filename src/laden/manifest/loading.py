"""Reading a manifest file: YAML (Kaiwo's format, as it is) or the same structure in TOML."""

from __future__ import annotations

import os
import tomllib
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..engine.errors import InputError


class ManifestError(InputError):
    """The manifest cannot be used; the message names the file, the item and the field."""


def read_document(path: str) -> dict[str, Any]:
    """The manifest's top-level mapping. `.toml` files are TOML; anything else is YAML (which
    also reads JSON)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not a UTF-8 text file") from None
    if os.path.splitext(path)[1].lower() == ".toml":
        try:
            document: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{path} is not valid TOML: {exc}") from None
    else:
        try:
            document = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise ManifestError(f"{path} is not valid YAML{where}: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError(
            f"{path}: expected a mapping with download_items at the top, "
            f"not {type(document).__name__}")
    return document
