"""Helpers for the manifest tests: writing manifests in YAML or TOML, and secrets as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml


def write_manifest(path: Path, data: dict[str, Any]) -> Path:
    """`data` as YAML, or as TOML when `path` ends in .toml (None values left out)."""
    if path.suffix == ".toml":
        path.write_text(tomli_w.dumps(_without_none(data)))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """A folder standing in for Kubernetes secrets mounted as files."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    return folder


def secret(folder: Path, name: str, value: str) -> str:
    path = folder / name
    path.write_text(value + "\n")
    return str(path)
